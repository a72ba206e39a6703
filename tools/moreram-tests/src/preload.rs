//! Tests of `libmoreram-preload.so` with programs that know nothing of moreram: Debian's own
//! `python3`, `sqlite3` and `zstd`, and small C programs built on the host
//! (`tools/testing/preload/`), run in the guest through `host-run` with
//! `moreram run --policy ...` in front of them.
//!
//! The host's build directory is `MORERAM_HOST_BUILD` (the guest sees it under `/host`): the
//! installed prefix (`prefix/bin/moreram`, `prefix/lib/libmoreram-preload.so`), and in
//! `preload/` the C programs, the scripts, and what the same programs printed on the host
//! without the preload (`moreram-itest --preload-reference DIR` writes that, in `make test`,
//! before the VM boots). A program's output in the guest must be those bytes exactly.
//!
//! Each program is watched while it runs: `moreram stat --json` every half second, and its
//! `RssAnon` in `/proc/PID/status` at the same moment. Tier memory is not anonymous memory, so
//! "most of its heap is in VRAM" reads: the VRAM `moreram stat` gives the process is at least
//! twice the rest of its anonymous memory.

use crate::{check, pools::Knobs, Test, TestResult};
use moreram::{Moreram, Placement, Tier};
use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

const MIB: u64 = 1 << 20;

// Sized so that the six tests take about two minutes in the VM under TCG (user space runs about
// 20 times slower than on the host there).

/// Rows of Python objects (about 670 bytes each, 130 MiB in all).
const PYTHON_ROWS: u32 = 200_000;
/// Rows of the SQLite table (about 600 bytes each, 75 MiB with the index).
const SQLITE_ROWS: u32 = 100_000;
/// The compressor's input.
const ZSTD_MIB: usize = 24;
/// zstd's arguments: a 64 MiB window and two worker threads.
const ZSTD_ARGS: &[&str] = &["-q", "-3", "--long=26", "-T2"];
/// The memory cgroup limit of the spill test, and what the program allocates under it.
const SPILL_LIMIT_MIB: u64 = 64;
const SPILL_MIB: u64 = 160;
/// The scavenging test's allocation, freed before the request, in blocks of 16 MiB: jemalloc
/// gives a freed extent of 8 MiB or more back at once (its `oversize_threshold`), smaller ones
/// only as its decay purges them, on later calls.
const SCAVENGE_MIB: u64 = 96;
const SCAVENGE_BLOCK_MIB: u64 = 16;
/// A program that runs longer than this has hung.
const TIMEOUT: Duration = Duration::from_secs(300);
/// The cgroup of the spill test.
const CGROUP: &str = "/sys/fs/cgroup/moreram-preload";

/// The tests of this file.
pub const TESTS: &[Test] = &[
    Test::new("preload-python", &["preload"], |_| python()),
    Test::new("preload-sqlite3", &["preload"], |_| sqlite()),
    Test::new("preload-zstd", &["preload"], |_| zstd()),
    Test::new("preload-threads", &["preload"], |_| threads()),
    Test::new("preload-spill", &["preload"], |_| spill()),
    Test::new("preload-scavenge", &["preload"], |_| scavenge()),
    Test::new("preload-fork", &["preload"], |_| fork()),
];

fn e<T: std::fmt::Display>(what: &str) -> impl FnOnce(T) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// The host's build directory, as the host (and a program under `host-run`) names it.
fn host_build() -> Result<PathBuf, String> {
    std::env::var_os("MORERAM_HOST_BUILD")
        .map(PathBuf::from)
        .ok_or_else(|| "MORERAM_HOST_BUILD is not set (the host's build directory)".into())
}

/// Where the guest sees a host path.
fn in_guest(host: &Path) -> PathBuf {
    Path::new("/host").join(host.strip_prefix("/").unwrap_or(host))
}

/// `preload/` of the host's build directory (host path).
fn dir() -> Result<PathBuf, String> {
    Ok(host_build()?.join("preload"))
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// One program as it is run: `NAME=VALUE` settings, then the program and its arguments.
struct Program {
    env: Vec<String>,
    argv: Vec<String>,
}

impl Program {
    fn new(env: &[&str], argv: &[String]) -> Self {
        Program {
            env: env.iter().map(|e| e.to_string()).collect(),
            argv: argv.to_vec(),
        }
    }

    /// On the host, without the preload: in the environment `host-run` gives (env -i).
    fn on_host(&self) -> Command {
        let mut c = Command::new("/usr/bin/env");
        c.args([
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME=/tmp",
            "LANG=C.UTF-8",
        ])
        .args(&self.env)
        .args(&self.argv);
        c
    }

    /// In the guest through `host-run`, under `moreram run OPTIONS --` (no preload without
    /// options).
    fn in_guest(&self, run: &[&str]) -> Result<Command, String> {
        let mut c = Command::new("host-run");
        c.args(&self.env);
        if !run.is_empty() {
            c.arg(s(&host_build()?.join("prefix/bin/moreram")))
                .arg("run")
                .args(run)
                .arg("--");
        }
        c.args(&self.argv);
        Ok(c)
    }
}

fn python_program(d: &Path) -> Program {
    Program::new(
        &["PYTHONMALLOC=malloc", "PYTHONHASHSEED=0"],
        &[
            "/usr/bin/python3".into(),
            s(&d.join("objects.py")),
            PYTHON_ROWS.to_string(),
        ],
    )
}

fn sqlite_program() -> Program {
    Program::new(&[], &["/usr/bin/sqlite3".into(), ":memory:".into()])
}

/// The SQL script with its number of rows.
fn sqlite_input(script: &Path) -> Result<Vec<u8>, String> {
    let t = fs::read_to_string(script).map_err(e(&s(script)))?;
    Ok(t.replace("@ROWS@", &SQLITE_ROWS.to_string()).into_bytes())
}

fn zstd_program(args: &[&str], file: &str) -> Program {
    let mut argv: Vec<String> = vec!["/usr/bin/zstd".into()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.extend(["-c".into(), file.into()]);
    Program::new(&[], &argv)
}

/// Text of `mib` MiB, the same every time: lines of words from a vocabulary of 5000, and a
/// number (it compresses about 2.4 to 1).
fn zstd_text(mib: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let words: Vec<Vec<u8>> = (0..5000)
        .map(|_| {
            let len = 2 + next() % 8;
            (0..len).map(|_| b'a' + (next() % 26) as u8).collect()
        })
        .collect();
    let mut out = Vec::with_capacity(mib << 20);
    while out.len() < mib << 20 {
        for _ in 0..12 {
            out.extend_from_slice(&words[(next() % 5000) as usize]);
            out.push(b' ');
        }
        out.extend_from_slice(format!("{}\n", next() % 1_000_000).as_bytes());
    }
    out.truncate(mib << 20);
    out
}

/// Runs a command to the end with `stdin`; its standard output (standard error is passed on).
fn output(mut c: Command, stdin: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(e("spawn"))?;
    let mut w = child.stdin.take().ok_or("no stdin")?;
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || w.write_all(&input));
    let out = child.wait_with_output().map_err(e("wait"))?;
    let _ = feeder.join();
    if !out.status.success() {
        return Err(format!("{:?}: {}", c.get_program(), out.status));
    }
    Ok(out.stdout)
}

/// `moreram-itest --preload-reference DIR`, on the host: what the programs print without the
/// preload, for the guest to compare with; and the compressor's input.
pub fn reference(d: &Path) -> Result<(), String> {
    let write = |name: &str, bytes: &[u8]| {
        fs::write(d.join(name), bytes).map_err(|er| format!("{}: {er}", s(&d.join(name))))
    };
    write(
        "python.out",
        &output(python_program(d).on_host(), b"").map_err(e("python3"))?,
    )?;
    let sql = sqlite_input(&d.join("sqlite.sql"))?;
    write(
        "sqlite.out",
        &output(sqlite_program().on_host(), &sql).map_err(e("sqlite3"))?,
    )?;
    let input = d.join("zstd.in");
    write("zstd.in", &zstd_text(ZSTD_MIB))?;
    write(
        "zstd.in.zst",
        &output(zstd_program(ZSTD_ARGS, &s(&input)).on_host(), b"").map_err(e("zstd"))?,
    )?;
    Ok(())
}

/// What was seen of a process while it ran: the sample of `moreram stat --json` where it held
/// the most VRAM.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    vram: u64,
    system: u64,
    /// `RssAnon` at that sample, in bytes.
    anon: u64,
    samples: u32,
}

/// One look at `pid`: its tier use from `moreram stat --json` and its anonymous memory.
fn look(pid: u32, seen: &mut Seen) -> Result<(), String> {
    let out = Command::new("moreram")
        .args(["stat", "--json"])
        .output()
        .map_err(e("moreram stat"))?;
    check!(out.status.success(), "moreram stat --json: {}", out.status);
    let j: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(e("moreram stat --json"))?;
    let anon = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        << 10;
    seen.samples += 1;
    let procs = j["processes"]
        .as_array()
        .ok_or("stat --json: no processes")?;
    if let Some(p) = procs.iter().find(|p| p["pid"] == pid) {
        let vram = p["vram"].as_u64().unwrap_or(0);
        if vram > seen.vram {
            seen.vram = vram;
            seen.system = p["system"].as_u64().unwrap_or(0);
            seen.anon = anon;
        }
    }
    Ok(())
}

/// Waits for `child`, looking at it every half second.
fn watch(child: &mut Child) -> Result<(ExitStatus, Seen), String> {
    let start = Instant::now();
    let mut seen = Seen::default();
    loop {
        if let Some(st) = child.try_wait().map_err(e("wait"))? {
            return Ok((st, seen));
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no exit after {} s", TIMEOUT.as_secs()));
        }
        look(child.id(), &mut seen)?;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The preload's `--summary` line in a standard error: bytes served to VRAM, system pages and
/// by the C library.
fn summary(stderr: &str) -> Option<(u64, u64, u64)> {
    let l = stderr.lines().find(|l| l.contains("tier served"))?;
    let nums: Vec<u64> = l
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    // pid, VRAM, system, peak, C library.
    (nums.len() == 5).then(|| (nums[1], nums[2], nums[4]))
}

/// Runs `p` in the guest under `moreram run RUN`, stdin from `stdin`, stdout to
/// `/tmp/preload-NAME.out`, watched; fails unless it exits 0 with its heap in VRAM (at least
/// `min_vram`, and twice its other anonymous memory). Returns its output.
fn run_in_vram(
    name: &str,
    p: &Program,
    run: &[&str],
    stdin: &[u8],
    min_vram: u64,
) -> Result<Vec<u8>, String> {
    let out_path = format!("/tmp/preload-{name}.out");
    let err_path = format!("/tmp/preload-{name}.err");
    let start = Instant::now();
    let mut child = p
        .in_guest(run)?
        .stdin(Stdio::piped())
        .stdout(fs::File::create(&out_path).map_err(e(&out_path))?)
        .stderr(fs::File::create(&err_path).map_err(e(&err_path))?)
        .spawn()
        .map_err(e("host-run"))?;
    let mut w = child.stdin.take().ok_or("no stdin")?;
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || w.write_all(&input));
    let watched = watch(&mut child);
    let _ = feeder.join();
    let err = fs::read_to_string(&err_path).unwrap_or_default();
    let out = fs::read(&out_path).map_err(e(&out_path));
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    let (st, seen) = watched.map_err(|er| format!("{name}: {er}; stderr: {err}"))?;
    check!(st.success(), "{name}: {st}; stderr: {err}");
    let out = out?;
    let (to_vram, to_system, to_libc) = summary(&err).unwrap_or_default();
    println!(
        "moreram-info: {name} under the preload: {:.1} s; at most {} MiB of VRAM ({} MiB of system pages of the tier, {} MiB other anonymous memory at that moment; {} looks); served {} MiB to VRAM, {} MiB to system pages, {} MiB by the C library",
        start.elapsed().as_secs_f64(),
        seen.vram / MIB,
        seen.system / MIB,
        seen.anon / MIB,
        seen.samples,
        to_vram / MIB,
        to_system / MIB,
        to_libc / MIB
    );
    check!(
        seen.vram >= min_vram && seen.vram >= 2 * seen.anon,
        "{name}: its heap is not in VRAM: at most {} MiB of VRAM (want {} MiB), {} MiB other anonymous memory then",
        seen.vram / MIB,
        min_vram / MIB,
        seen.anon / MIB
    );
    check!(
        to_vram > 2 * (to_system + to_libc),
        "{name}: the preload served {to_vram} bytes to VRAM, {to_system} to system pages, {to_libc} by the C library"
    );
    Ok(out)
}

/// Fails unless `got` is the reference file's bytes.
fn same(what: &str, got: &[u8], reference: &Path) -> TestResult {
    let want = fs::read(in_guest(reference)).map_err(e(&s(reference)))?;
    if got == want.as_slice() {
        return Ok(());
    }
    let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
    Err(format!(
        "{what}: {} bytes, the reference {} bytes; they differ from byte {at}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        String::from_utf8_lossy(&got[at..got.len().min(at + 80)]),
        String::from_utf8_lossy(&want[at..want.len().min(at + 80)])
    ))
}

/// `moreram run` for the programs of Debian: everything of 16 bytes and more in the tier.
const PREFER: &[&str] = &["--policy", "prefer", "--threshold", "16", "--summary"];

/// Python builds and sorts 130 MiB of objects and starts a subprocess, with its heap in VRAM;
/// it prints what it printed on the host without the preload.
fn python() -> TestResult {
    let d = dir()?;
    let out = run_in_vram("python3", &python_program(&d), PREFER, b"", 96 * MIB)?;
    same("python3", &out, &d.join("python.out"))
}

/// SQLite fills, indexes and queries a 75 MiB in-memory table in VRAM.
fn sqlite() -> TestResult {
    let d = dir()?;
    let sql = sqlite_input(&in_guest(&d.join("sqlite.sql")))?;
    let out = run_in_vram("sqlite3", &sqlite_program(), PREFER, &sql, 64 * MIB)?;
    same("sqlite3", &out, &d.join("sqlite.out"))
}

/// zstd compresses 24 MiB (a 64 MiB window, two threads) and decompresses it, with its buffers
/// in VRAM: the compressed bytes are the host's, the round trip gives the input back.
fn zstd() -> TestResult {
    let d = dir()?;
    let input = d.join("zstd.in");
    let packed = run_in_vram(
        "zstd",
        &zstd_program(ZSTD_ARGS, &s(&input)),
        PREFER,
        b"",
        32 * MIB,
    )?;
    same("zstd compressed", &packed, &d.join("zstd.in.zst"))?;
    let file = "/tmp/preload-zstd.zst";
    fs::write(file, &packed).map_err(e(file))?;
    let r = run_in_vram(
        "zstd-d",
        &zstd_program(&["-q", "-d", "--long=26"], file),
        PREFER,
        b"",
        32 * MIB,
    );
    let _ = fs::remove_file(file);
    same("zstd round trip", &r?, &input)
}

/// Eight threads allocate, realloc and free across threads, on both sides of the threshold,
/// checking every byte of every block.
fn threads() -> TestResult {
    let d = dir()?;
    let p = Program::new(
        &[],
        &[
            s(&d.join("preload-threads")),
            "8".into(),
            "6000".into(),
            "262144".into(),
        ],
    );
    let out = run_in_vram(
        "threads",
        &p,
        &["--policy", "prefer", "--threshold", "256", "--summary"],
        b"",
        32 * MIB,
    )?;
    let text = String::from_utf8_lossy(&out);
    println!("moreram-info: {}", text.trim());
    let other: u64 = text
        .split(" free (")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected output: {text}"))?;
    check!(other > 0, "no block was freed by another thread: {text}");
    Ok(())
}

/// Fork keeps the heap (issue 11): `tools/testing/preload/fork.c` under the preload with every
/// block in the tier (threshold 0). A heap block is there in the child as it was at the fork;
/// parent, child and grandchild each see only their own writes; a child frees the inherited
/// block and allocates anew; a child execs; 16 forks while another thread allocates. The
/// kernel copies the mappings (`MORERAM_ALLOC_FORK_COPY`, which libmoreram asks for).
fn fork() -> TestResult {
    let d = dir()?;
    let p = Program::new(&[], &[s(&d.join("preload-fork"))]);
    let err_path = "/tmp/preload-fork.err";
    let st = p
        .in_guest(&["--policy", "prefer", "--threshold", "0", "--summary"])?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(err_path).map_err(e(err_path))?)
        .status()
        .map_err(e("host-run"))?;
    let err = fs::read_to_string(err_path).unwrap_or_default();
    let _ = fs::remove_file(err_path);
    check!(st.success(), "preload-fork: {st}; stderr: {err}");
    let (to_vram, to_system, to_libc) = summary(&err).unwrap_or_default();
    println!(
        "moreram-info: fork under the preload: served {} KiB to VRAM, {} KiB to system pages, {} KiB by the C library",
        to_vram >> 10,
        to_system >> 10,
        to_libc >> 10
    );
    check!(
        to_vram >= MIB,
        "preload-fork: its 1 MiB block was not in VRAM: {err}"
    );
    Ok(())
}

/// Writes a cgroup file.
fn cg_write(file: &str, v: &str) -> TestResult {
    fs::write(file, v).map_err(|er| format!("{file} <- {v}: {er}"))
}

fn cg_read(name: &str) -> String {
    fs::read_to_string(format!("{CGROUP}/{name}")).unwrap_or_default()
}

/// `key N` of a flat-keyed cgroup file.
fn cg_key(name: &str, key: &str) -> u64 {
    cg_read(name)
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A memory cgroup with a limit, removed on drop.
struct Cgroup;

impl Cgroup {
    fn new(limit: u64) -> Result<Cgroup, String> {
        let root = "/sys/fs/cgroup";
        let ctl = fs::read_to_string(format!("{root}/cgroup.controllers"))
            .map_err(|er| format!("{root}: no cgroup2 mounted: {er}"))?;
        check!(
            ctl.split_whitespace().any(|c| c == "memory"),
            "no memory controller: {ctl}"
        );
        cg_write(&format!("{root}/cgroup.subtree_control"), "+memory")?;
        let _ = fs::remove_dir(CGROUP);
        fs::create_dir(CGROUP).map_err(e(CGROUP))?;
        let cg = Cgroup;
        cg_write(&format!("{CGROUP}/memory.max"), &limit.to_string())?;
        // No swap is on in the guest; where the file exists, none is allowed either.
        let _ = fs::write(format!("{CGROUP}/memory.swap.max"), "0");
        Ok(cg)
    }

    /// `p` in the guest, in this cgroup.
    fn command(&self, p: &Program, run: &[&str]) -> Result<Command, String> {
        let inner = p.in_guest(run)?;
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("echo $$ > {CGROUP}/cgroup.procs && exec \"$@\""))
            .arg("sh")
            .arg(inner.get_program())
            .args(inner.get_args());
        Ok(c)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if fs::remove_dir(CGROUP).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Reads lines of `child`'s output until one starts with `prefix`.
fn wait_line(out: &mut impl BufRead, prefix: &str) -> Result<String, String> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).map_err(e("read"))?;
        check!(n > 0, "output ended before a line \"{prefix}...\"");
        if line.starts_with(prefix) {
            return Ok(line.trim().to_string());
        }
    }
}

/// Under `spill` in a memory cgroup of 64 MiB, a program fills 160 MiB and checks it: the C
/// library serves until the cgroup is short, the tier after; without the preload the same
/// program is killed by the cgroup's OOM killer.
fn spill() -> TestResult {
    let d = dir()?;
    let cg = Cgroup::new(SPILL_LIMIT_MIB * MIB)?;
    let fill = Program::new(
        &["MORERAM_SPILL_PERCENT=25"],
        &[s(&d.join("preload-fill")), SPILL_MIB.to_string()],
    );
    let mut child = cg
        .command(&fill, &["--policy", "spill", "--threshold", "64K"])?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(e("spawn"))?;
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let filled = wait_line(&mut out, "filled");
    let mut seen = Seen::default();
    let looked = look(pid, &mut seen);
    let current = cg_key("memory.stat", "anon ");
    drop(child.stdin.take());
    let rest = wait_line(&mut out, "checked");
    let st = child.wait().map_err(e("wait"))?;
    filled?;
    looked?;
    println!(
        "moreram-info: spill: {SPILL_MIB} MiB filled in a cgroup of {SPILL_LIMIT_MIB} MiB: {} MiB of VRAM, {} MiB anonymous memory in the cgroup",
        seen.vram / MIB,
        current / MIB
    );
    check!(
        st.success() && rest.is_ok(),
        "under the preload: {st}, {rest:?}"
    );
    check!(
        seen.vram >= (SPILL_MIB - SPILL_LIMIT_MIB) * MIB,
        "only {} MiB of the program's memory in VRAM",
        seen.vram / MIB
    );
    check!(
        cg_key("memory.events", "oom_kill ") == 0,
        "the OOM killer ran under the preload: {}",
        cg_read("memory.events")
    );
    // The limit binds: without the preload the C library's heap grows into it.
    let st = cg
        .command(
            &Program::new(&[], &[s(&d.join("preload-fill")), SPILL_MIB.to_string()]),
            &[],
        )?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(e("spawn"))?;
    check!(
        std::os::unix::process::ExitStatusExt::signal(&st) == Some(libc::SIGKILL)
            && cg_key("memory.events", "oom_kill ") >= 1,
        "without the preload the program was not OOM-killed: {st}; {}",
        cg_read("memory.events")
    );
    Ok(())
}

/// A program that freed 96 MiB of tier memory holds it in its pool (and in its arena's open
/// chunk); when an allocation takes the bank below its low watermark, the library's watcher
/// thread gives everything back before the deadline, while the program's own code only waits
/// for input.
fn scavenge() -> TestResult {
    let d = dir()?;
    let mr = Moreram::open().map_err(e("open"))?;
    mr.scavenge().map_err(e("SCAVENGE"))?;
    let pooled = |mr: &Moreram| -> Result<Vec<u64>, String> {
        Ok(mr
            .banks()
            .map_err(e("BANKS"))?
            .iter()
            .map(|b| b.pooled)
            .collect())
    };
    check!(
        pooled(&mr)?.iter().all(|&p| p == 0),
        "pool memory before the test: {:?}",
        pooled(&mr)?
    );
    let fill = Program::new(
        &[],
        &[
            s(&d.join("preload-fill")),
            SCAVENGE_MIB.to_string(),
            SCAVENGE_BLOCK_MIB.to_string(),
            "--free".into(),
        ],
    );
    let mut child = fill
        .in_guest(&["--policy", "prefer", "--threshold", "64K"])?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(e("spawn"))?;
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let r = (|| -> TestResult {
        wait_line(&mut out, "freed")?;
        let threads: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
            .map_err(e("task"))?
            .filter_map(|t| fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|c| c.trim().to_string())
            .collect();
        check!(
            threads.iter().any(|c| c.starts_with("moreram-scaven")),
            "no watcher thread in the program: {threads:?}"
        );
        let banks = mr.banks().map_err(e("BANKS"))?;
        let bank = banks
            .iter()
            .max_by_key(|b| b.pooled)
            .ok_or("no banks")?
            .clone();
        check!(
            bank.pooled >= 32 * MIB,
            "freed tier memory did not go to the program's pool: {:?}",
            pooled(&mr)?
        );
        // The next allocation leaves less than the low watermark available.
        let available = bank.free - bank.pooled;
        let _knobs = Knobs::set(&bank, available & !4095, 0, 20_000)?;
        let t0 = Instant::now();
        let a = mr
            .alloc(4 * MIB, Placement::Bank(bank.index), false)
            .map_err(e("ALLOC"))?;
        check!(
            a.tier() == Tier::Vram(bank.index),
            "the crossing allocation went to {}",
            a.tier()
        );
        let mut left = bank.pooled;
        while left > 0 && t0.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(20));
            left = pooled(&mr)?[bank.index as usize];
        }
        let took = t0.elapsed();
        let mut seen = Seen::default();
        look(pid, &mut seen)?;
        a.free().map_err(e("FREE"))?;
        mr.scavenge().map_err(e("SCAVENGE"))?;
        println!(
            "moreram-info: scavenge: {} MiB of pool given back by the preloaded program's watcher thread {:.0} ms after the low watermark was crossed (deadline 20 s)",
            bank.pooled / MIB,
            took.as_secs_f64() * 1e3
        );
        check!(
            left == 0,
            "{} MiB still pooled {:.1} s after the request (deadline 20 s)",
            left / MIB,
            took.as_secs_f64()
        );
        check!(
            seen.vram == 0,
            "the program still holds {} MiB of VRAM after scavenging",
            seen.vram / MIB
        );
        Ok(())
    })();
    drop(child.stdin.take());
    let st = child.wait().map_err(e("wait"))?;
    r?;
    check!(st.success(), "the program: {st}");
    Ok(())
}
