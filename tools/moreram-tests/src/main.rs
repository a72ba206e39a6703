//! Integration tests for moreram, run inside the test VM against the real module.
//!
//! ```text
//! moreram-itest [--expect VENDOR:DEVICE:BAR:SIZE]... TEST...
//! ```
//!
//! Each test prints one line, `moreram-test: ok NAME` or `moreram-test: not ok NAME: REASON`,
//! which the host counts; the exit status is non-zero when any test failed.

mod banks;
mod observe;
mod owners;
mod pools;
mod tier;

use std::process::ExitCode;

/// What a test returns: `Err` carries the reason it failed.
pub type TestResult = Result<(), String>;

/// Fails the test with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Passes when `r` failed with errno `want`.
pub fn expect_errno<T>(what: &str, r: std::io::Result<T>, want: i32) -> TestResult {
    match r {
        Err(e) if e.raw_os_error() == Some(want) => Ok(()),
        Err(e) => Err(format!("{what}: {e}, expected errno {want}")),
        Ok(_) => Err(format!("{what}: succeeded, expected errno {want}")),
    }
}

/// A bank the VM was started with, as `--expect 1af4:1110:2:256M` describes it.
#[derive(Clone, Debug)]
pub struct Expected {
    pub vendor: u16,
    pub device: u16,
    pub bar: u8,
    pub size: u64,
}

fn parse_expect(s: &str) -> Result<Expected, String> {
    let p: Vec<&str> = s.split(':').collect();
    if p.len() != 4 {
        return Err(format!("--expect {s}: want VENDOR:DEVICE:BAR:SIZE"));
    }
    let hex = |x: &str| u16::from_str_radix(x, 16).map_err(|e| format!("{x}: {e}"));
    let size = match p[3].strip_suffix('M') {
        Some(m) => m.parse::<u64>().map_err(|e| e.to_string())? << 20,
        None => p[3].parse::<u64>().map_err(|e| e.to_string())?,
    };
    Ok(Expected {
        vendor: hex(p[0])?,
        device: hex(p[1])?,
        bar: p[2].parse().map_err(|e| format!("{}: {e}", p[2]))?,
        size,
    })
}

/// Runs this program again as `--child ARGS...` and fails unless it exits 0.
pub fn run_child(args: &[&str]) -> TestResult {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let st = std::process::Command::new(exe)
        .arg("--child")
        .args(args)
        .status()
        .map_err(|e| e.to_string())?;
    check!(st.success(), "child {args:?}: {st}");
    Ok(())
}

fn main() -> ExitCode {
    let mut expected = Vec::new();
    let mut tests = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--expect" => match args.next().as_deref().map(parse_expect) {
                Some(Ok(e)) => expected.push(e),
                Some(Err(e)) => {
                    eprintln!("{e}");
                    return ExitCode::from(64);
                }
                None => {
                    eprintln!("--expect needs a value");
                    return ExitCode::from(64);
                }
            },
            // Internal: the child half of tests that need another user or process.
            "--child" => {
                let rest: Vec<String> = args.collect();
                return match rest.first().map(String::as_str) {
                    Some("zero-check") => tier::child_zero_check(&rest[1..]),
                    what => banks::child(what),
                };
            }
            _ => tests.push(a),
        }
    }
    if tests.is_empty() {
        eprintln!("usage: moreram-itest [--expect VENDOR:DEVICE:BAR:SIZE]... TEST...");
        eprintln!(
            "tests: {} {} {} {} {}",
            banks::NAMES.join(" "),
            tier::NAMES.join(" "),
            owners::NAMES.join(" "),
            pools::NAMES.join(" "),
            observe::NAMES.join(" ")
        );
        return ExitCode::from(64);
    }
    let mut failed = 0;
    for t in &tests {
        let result = if let Some(n) = t.strip_prefix("count=") {
            match n.parse() {
                Ok(n) => banks::count(n),
                Err(e) => Err(format!("{t}: {e}")),
            }
        } else {
            match banks::run(t, &expected)
                .or_else(|| tier::run(t))
                .or_else(|| owners::run(t))
                .or_else(|| pools::run(t))
                .or_else(|| observe::run(t))
            {
                Some(r) => r,
                None => Err(format!("no test named {t}")),
            }
        };
        match result {
            Ok(()) => println!("moreram-test: ok {t}"),
            Err(why) => {
                failed += 1;
                println!("moreram-test: not ok {t}: {why}");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
