//! Integration tests for moreram, run inside the test VM against the real module.
//!
//! ```text
//! moreram-itest [--expect VENDOR:DEVICE:BAR:SIZE]... [--banks N] (--group GROUP | TEST...)
//! moreram-itest --preload-reference DIR      (on the host: see the `preload` module)
//! ```
//!
//! Every test is written once, in the `TESTS` table of its module, with the groups that run it.
//! The output is KTAP (Documentation/dev-tools/ktap.rst): one subtest named after the group (or
//! `tests`), its plan, and a result line per test, indented one level; the caller writes the
//! subtest's own result line (the guest script nests it in the VM run's document). The exit
//! status is non-zero when any test failed. Without arguments it lists the groups and tests.

mod banks;
mod limits;
mod observe;
mod owners;
mod pools;
mod preload;
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

/// One integration test: its name, the groups that run it and its body.
pub struct Test {
    pub name: &'static str,
    pub groups: &'static [&'static str],
    pub run: fn(&Ctx) -> TestResult,
}

impl Test {
    pub const fn new(
        name: &'static str,
        groups: &'static [&'static str],
        run: fn(&Ctx) -> TestResult,
    ) -> Self {
        Test { name, groups, run }
    }
}

/// What the command line says about the VM.
pub struct Ctx {
    /// The banks the VM was started with (`--expect`).
    pub expected: Vec<Expected>,
    /// How many banks are bound now (`--banks N`; by default one per `--expect`).
    pub banks: usize,
}

/// Every test; a group runs its tests in this order.
const TESTS: &[&[Test]] = &[
    banks::TESTS,
    tier::TESTS,
    owners::TESTS,
    pools::TESTS,
    observe::TESTS,
    limits::TESTS,
    preload::TESTS,
];

fn all() -> impl Iterator<Item = &'static Test> {
    TESTS.iter().flat_map(|t| t.iter())
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: moreram-itest [--expect VENDOR:DEVICE:BAR:SIZE]... [--banks N] (--group GROUP | TEST...)"
    );
    for t in all() {
        eprintln!("  {:<26} {}", t.name, t.groups.join(" "));
    }
    ExitCode::from(64)
}

/// One KTAP line, one level down (a subtest of the caller's document).
fn ktap(line: &str) {
    println!("    {line}");
}

fn main() -> ExitCode {
    let mut expected = Vec::new();
    let mut banks = None;
    let mut group = None;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--expect" => match args.next().as_deref().map(parse_expect) {
                Some(Ok(e)) => expected.push(e),
                Some(Err(e)) => {
                    eprintln!("{e}");
                    return ExitCode::from(64);
                }
                None => return usage(),
            },
            "--banks" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => banks = Some(n),
                None => return usage(),
            },
            // On the host, before the VM: what the preload's programs print without it.
            "--preload-reference" => {
                let Some(dir) = args.next() else {
                    return usage();
                };
                return match preload::reference(std::path::Path::new(&dir)) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("moreram-itest: preload reference: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            "--group" => match args.next() {
                Some(g) => group = Some(g),
                None => return usage(),
            },
            // Internal: the child half of tests that need another user or process.
            "--child" => {
                let rest: Vec<String> = args.collect();
                return match rest.first().map(String::as_str) {
                    Some("zero-check") => tier::child_zero_check(&rest[1..]),
                    what => banks::child(what),
                };
            }
            _ => names.push(a),
        }
    }
    let tests: Vec<&Test> = match &group {
        Some(g) if names.is_empty() => all().filter(|t| t.groups.contains(&g.as_str())).collect(),
        None => names
            .iter()
            .filter_map(|n| all().find(|t| t.name == n.as_str()))
            .collect(),
        _ => Vec::new(),
    };
    if tests.is_empty() || tests.len() < names.len() {
        return usage();
    }
    let ctx = Ctx {
        banks: banks.unwrap_or(expected.len()),
        expected,
    };
    ktap("KTAP version 1");
    ktap(&format!(
        "# Subtest: {}",
        group.as_deref().unwrap_or("tests")
    ));
    ktap(&format!("1..{}", tests.len()));
    let mut failed = 0;
    for (i, t) in tests.iter().enumerate() {
        match (t.run)(&ctx) {
            Ok(()) => ktap(&format!("ok {} {}", i + 1, t.name)),
            Err(why) => {
                failed += 1;
                // Each line a diagnostic, short enough for one /dev/kmsg record.
                for l in why.lines() {
                    ktap(&format!("# {}", l.chars().take(400).collect::<String>()));
                }
                ktap(&format!("not ok {} {}", i + 1, t.name));
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test names are unique, every test is in a group, and no group is named like a test
    /// (kunit.py would read that test's result line as the end of its group).
    #[test]
    fn table() {
        let mut names: Vec<&str> = all().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all().count(), "test names repeat");
        for t in all() {
            assert!(!t.groups.is_empty(), "{} is in no group", t.name);
            for g in t.groups {
                assert!(
                    names.binary_search(g).is_err(),
                    "group {g} is a test's name"
                );
            }
        }
    }
}
