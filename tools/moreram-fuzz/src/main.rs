//! moreram-fuzz: a randomized, reproducible campaign against the real moreram module, with an
//! oracle (see Documentation/testing.rst, "The campaign").
//!
//! ```text
//! moreram-fuzz [--seed N] [--seconds S] [--total-ops N] [--procs N] [--threads on|off] [--ops N]
//!              [--faults] [--coverage] [--ktap] [--tolerate NAME,...] [--worker K]
//! ```
//!
//! A root supervisor forks the workers (a quarter of them run as user 65534), restarts each
//! when it has made its operations, injects faults (fail_alloc, memory pressure, unbind and
//! rebind, rmmod), and at the end checks that the tier is back where it started and prints the
//! report: operations, the result table of every call, the oracle's dimensions, the defects it
//! recognised, and coverage. The seed, printed first, replays every process's choices.

mod board;
mod children;
mod engine;
mod kcov;
mod memops;
mod model;
mod oracle;
mod pattern;
mod probe;
mod rng;
mod signals;
mod supervisor;
mod worker;

use std::{process::ExitCode, sync::atomic::AtomicI32};

/// The board's memfd, for exec children.
pub static BOARD_FD: AtomicI32 = AtomicI32::new(-1);

/// What the command line asks for.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub seconds: u64,
    /// Stop once the run made this many operations (0: run for `seconds`, which stays the limit).
    pub total_ops: u64,
    pub procs: u32,
    pub threads: bool,
    /// Operations of a worker before it exits and a new one takes its slot (on average).
    pub worker_ops: u64,
    pub faults: bool,
    pub coverage: bool,
    pub ktap: bool,
    /// Defects (by index) reported without failing the run when hit (`--tolerate`).
    pub tolerate: u64,
    /// Exercise the inputs of issue 10 items 6 and 7 (RESERVE of more than RAM); off only
    /// while one of them is tolerated.
    pub strict_inputs: bool,
    /// Run only this worker slot.
    pub only: Option<u32>,
}

impl Config {
    /// Every fourth worker runs as the other user.
    pub fn nobody_slot(&self, slot: u32) -> bool {
        slot % 4 == 3
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: moreram-fuzz [--seed N] [--seconds S] [--total-ops N] [--procs N] [--threads on|off]\n\
         \x20                   [--ops N]\n\
         \x20                   [--faults] [--coverage] [--ktap] [--tolerate NAME,...] [--worker K]"
    );
    eprintln!("defects the oracle recognises (each fails the run unless --tolerate names it):");
    for d in oracle::DEFECTS {
        eprintln!("  {:<26} {}", d.name, d.what);
    }
    ExitCode::from(64)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--exec-child") {
        std::process::exit(children::exec_main(&args[1..]));
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 & 0xffff_ffff)
        .unwrap_or(1);
    let mut cfg = Config {
        seed,
        seconds: 60,
        total_ops: 0,
        procs: 16,
        threads: true,
        worker_ops: 1500,
        faults: false,
        coverage: false,
        ktap: false,
        tolerate: 0,
        strict_inputs: true,
        only: None,
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Option<u64> {
            let v = it.next()?;
            let v = v
                .strip_prefix("0x")
                .map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok());
            if v.is_none() {
                eprintln!("{name}: not a number");
            }
            v
        };
        match a.as_str() {
            "--seed" => match num("--seed") {
                Some(v) => cfg.seed = v,
                None => return usage(),
            },
            "--seconds" => match num("--seconds") {
                Some(v) => cfg.seconds = v,
                None => return usage(),
            },
            "--total-ops" => match num("--total-ops") {
                Some(v) => cfg.total_ops = v,
                None => return usage(),
            },
            "--procs" => match num("--procs") {
                Some(v) => cfg.procs = v as u32,
                None => return usage(),
            },
            "--ops" => match num("--ops") {
                Some(v) => cfg.worker_ops = v,
                None => return usage(),
            },
            "--worker" => match num("--worker") {
                Some(v) => cfg.only = Some(v as u32),
                None => return usage(),
            },
            "--threads" => cfg.threads = it.next().as_deref() != Some("off"),
            "--faults" => cfg.faults = true,
            "--coverage" => cfg.coverage = true,
            "--ktap" => cfg.ktap = true,
            "--tolerate" => {
                let v = it.next().unwrap_or_default();
                for name in v.split(',') {
                    if let Some(i) = oracle::DEFECTS.iter().position(|d| d.name == name) {
                        cfg.tolerate |= 1 << i;
                        if i == oracle::d::WARN || i == oracle::d::RESERVE_OOM {
                            cfg.strict_inputs = false;
                        }
                    } else {
                        eprintln!("--tolerate: no defect {name}");
                        return usage();
                    }
                }
            }
            _ => return usage(),
        }
    }
    if cfg.procs == 0 {
        return usage();
    }
    if supervisor::run(&cfg) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
