//! `moreram`: see and use the GPU memory tier from the shell.
//!
//! ```text
//! moreram stat [--json]                      banks and tiers, as a table
//! moreram top [--json] [--interval S] [--count N]
//!                                            per-process use, refreshing
//! moreram alloc SIZE [--vram-only|--system] [--hold] [--json]
//!                                            allocate, touch, report (and keep)
//! moreram run [--policy spill|prefer] [--threshold SIZE] [--vram-only] [--summary]
//!             -- PROGRAM ARGS...             run a program with its heap in the tier
//! ```
//!
//! It uses only what every user has: the `/dev/moreram` ioctls and `/proc`.

use moreram::{human_size, Bank, Moreram, Placement, ProcUse, Tier};
use std::{fmt::Write as _, io, process::ExitCode, time::Duration};

fn usage() -> ExitCode {
    eprintln!("usage: moreram stat [--json]");
    eprintln!("       moreram top [--json] [--interval SECONDS] [--count N]");
    eprintln!("       moreram alloc SIZE [--vram-only|--system] [--hold] [--json]");
    eprintln!("       moreram run [--policy spill|prefer] [--threshold SIZE] [--vram-only] [--summary] -- PROGRAM ARGS...");
    eprintln!("SIZE: bytes, or with a unit: 4K, 64M, 1G (KiB, MiB, GiB)");
    ExitCode::from(64)
}

/// Parses `4096`, `4K`, `64M`, `1G`, `2MiB`.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn bank_json(b: &Bank) -> String {
    format!(
        "{{\"index\":{},\"pci\":{},\"vendor\":{},\"device\":{},\"bar\":{},\"size\":{},\"free\":{},\"largest_free\":{},\"pooled\":{},\"low_watermark\":{},\"min_watermark\":{}}}",
        b.index,
        json_str(&b.pci.to_string()),
        b.vendor,
        b.device,
        b.bar,
        b.size,
        b.free,
        b.largest_free,
        b.pooled,
        b.low_watermark,
        b.min_watermark
    )
}

fn procs_json(procs: &[ProcUse]) -> String {
    let items: Vec<String> = procs
        .iter()
        .map(|p| {
            format!(
                "{{\"pid\":{},\"comm\":{},\"vram\":{},\"system\":{}}}",
                p.pid,
                json_str(&comm(p.pid)),
                p.vram,
                p.system
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn stat(json: bool) -> io::Result<()> {
    let mr = Moreram::open()?;
    let banks = mr.banks()?;
    let tier = mr.tier()?;
    let procs = mr.procs()?;
    if json {
        let b: Vec<String> = banks.iter().map(bank_json).collect();
        println!(
            "{{\"banks\":[{}],\"vram_size\":{},\"vram_free\":{},\"system_used\":{},\"processes\":{}}}",
            b.join(","),
            tier.vram_size,
            tier.vram_free,
            tier.system_used,
            procs_json(&procs)
        );
        return Ok(());
    }
    println!(
        "{:<5} {:<13} {:<10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "BANK", "PCI", "ID", "SIZE", "USED", "FREE", "LARGEST", "POOLED"
    );
    for b in &banks {
        println!(
            "{:<5} {:<13} {:<10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            b.index,
            b.pci.to_string(),
            format!("{:04x}:{:04x}", b.vendor, b.device),
            human_size(b.size),
            human_size(b.size - b.free),
            human_size(b.free),
            human_size(b.largest_free),
            human_size(b.pooled)
        );
    }
    println!();
    println!("{:<8} {:>10} {:>10}", "TIER", "SIZE", "USED");
    println!(
        "{:<8} {:>10} {:>10}",
        "vram",
        human_size(tier.vram_size),
        human_size(tier.vram_size - tier.vram_free)
    );
    println!(
        "{:<8} {:>10} {:>10}",
        "system",
        "-",
        human_size(tier.system_used)
    );
    if !procs.is_empty() {
        println!();
        print_procs(&procs);
    }
    Ok(())
}

fn print_procs(procs: &[ProcUse]) {
    println!(
        "{:>7} {:<16} {:>10} {:>10}",
        "PID", "COMMAND", "VRAM", "SYSTEM"
    );
    let mut v = procs.to_vec();
    v.sort_by_key(|p| std::cmp::Reverse(p.vram + p.system));
    for p in v {
        println!(
            "{:>7} {:<16} {:>10} {:>10}",
            p.pid,
            comm(p.pid),
            human_size(p.vram),
            human_size(p.system)
        );
    }
}

fn top(json: bool, interval: Duration, count: Option<u64>) -> io::Result<()> {
    let mr = Moreram::open()?;
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(1) } == 1;
    let mut i = 0;
    loop {
        let procs = mr.procs()?;
        if json {
            println!("{}", procs_json(&procs));
        } else {
            if tty {
                print!("\x1b[H\x1b[2J");
            }
            let tier = mr.tier()?;
            println!(
                "moreram - vram {} of {} used, system {} used",
                human_size(tier.vram_size - tier.vram_free),
                human_size(tier.vram_size),
                human_size(tier.system_used)
            );
            print_procs(&procs);
        }
        i += 1;
        if count.is_some_and(|c| i >= c) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

fn alloc(size: u64, placement: Placement, hold: bool, json: bool) -> io::Result<()> {
    let mr = Moreram::open()?;
    let a = mr.alloc(size, placement, false)?;
    let mut m = a.map()?;
    // Touch every page, so the memory is really there.
    for off in (0..m.len()).step_by(4096) {
        m.as_mut_slice()[off] = 1;
    }
    let (tier, bank) = match a.tier() {
        Tier::Vram(b) => ("vram", b as i64),
        Tier::System => ("system", -1),
    };
    if json {
        println!(
            "{{\"pid\":{},\"handle\":{},\"size\":{},\"tier\":\"{}\",\"bank\":{}}}",
            std::process::id(),
            a.handle(),
            a.size(),
            tier,
            bank
        );
    } else {
        println!(
            "pid {}: {} in {} (handle {})",
            std::process::id(),
            human_size(a.size()),
            a.tier(),
            a.handle()
        );
    }
    use std::io::Write;
    io::stdout().flush()?;
    if hold {
        loop {
            // SAFETY: waits for a signal; the default action of SIGINT/SIGTERM ends us.
            unsafe { libc::pause() };
        }
    }
    drop(m);
    a.free()
}

/// Where `libmoreram-preload.so` is: `MORERAM_PRELOAD`, next to this program, in `../lib`
/// of its prefix, or (in the build tree) cargo's name for it next to it.
fn find_preload() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("MORERAM_PRELOAD") {
        return Some(p.into());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join("libmoreram-preload.so"),
        dir.join("../lib/libmoreram-preload.so"),
        dir.join("libmoreram_preload.so"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// `moreram run`: sets the preload and its policy in the environment and executes the program.
fn run(opts: &[String], program: &[String]) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program.first().ok_or("no program given")?);
    cmd.args(&program[1..]);
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        match o.as_str() {
            "--policy" => match it.next().map(String::as_str) {
                Some(p @ ("spill" | "prefer")) => {
                    cmd.env("MORERAM_POLICY", p);
                }
                _ => return Err("--policy takes spill or prefer".into()),
            },
            "--threshold" => {
                let t = it
                    .next()
                    .and_then(|s| parse_size(s))
                    .ok_or("--threshold takes a size")?;
                cmd.env("MORERAM_THRESHOLD", t.to_string());
            }
            "--vram-only" => {
                cmd.env("MORERAM_TIER", "vram");
            }
            "--summary" => {
                cmd.env("MORERAM_SUMMARY", "1");
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let lib = find_preload().ok_or("libmoreram-preload.so not found (set MORERAM_PRELOAD)")?;
    let mut preload = lib.into_os_string();
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|o| !o.is_empty()) {
        preload.push(":");
        preload.push(old);
    }
    cmd.env("LD_PRELOAD", preload);
    let e = cmd.exec();
    Err(format!("{}: {e}", program[0]))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("run") {
        let Some(dash) = args.iter().position(|a| a == "--") else {
            return usage();
        };
        return match run(&args[1..dash], &args[dash + 1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("moreram run: {e}");
                ExitCode::from(127)
            }
        };
    }
    let flag = |f: &str| args.iter().any(|a| a == f);
    let value = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
    };
    let json = flag("--json");
    let r = match args.first().map(String::as_str) {
        Some("stat") => stat(json),
        Some("top") => {
            let interval = value("--interval")
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(1.0);
            let count = value("--count").and_then(|v| v.parse().ok());
            top(json, Duration::from_secs_f64(interval.max(0.05)), count)
        }
        Some("alloc") => {
            let Some(size) = args.get(1).and_then(|s| parse_size(s)) else {
                return usage();
            };
            let placement = match (flag("--vram-only"), flag("--system")) {
                (true, true) => return usage(),
                (true, false) => Placement::VramOnly,
                (false, true) => Placement::SystemOnly,
                (false, false) => Placement::PreferVram,
            };
            alloc(size, placement, flag("--hold"), json)
        }
        _ => return usage(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moreram: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{json_str, parse_size};

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("4K"), Some(4096));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("2MiB"), Some(2 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("12X"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
