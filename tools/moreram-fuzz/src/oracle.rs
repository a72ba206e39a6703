//! What the oracle judges: the operations and the codes they may return, the dimensions a
//! result is judged in, and the defects the oracle recognises by name (those of issue 10 and
//! those the campaign found, all fixed): a hit fails the run unless `--tolerate` names it.

use crate::board::{board, CODE_BUS, CODE_SEGV, FAIL_LEN, MAX_DEFECTS, NCODES};
use std::sync::atomic::Ordering::Relaxed;

/// Every operation the campaign makes, for the errno table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Op {
    Alloc,
    Free,
    Query,
    Tier,
    Banks,
    Share,
    Import,
    Control,
    Rights,
    Procs,
    Reserve,
    Scavenge,
    Notify,
    Read,
    Poll,
    BadIoctl,
    Mmap,
    Munmap,
    Mremap,
    Mprotect,
    Madvise,
    Write,
    Verify,
    RacyRead,
    ProcMem,
    VmReadv,
    Open,
    Close,
    Dup,
    Fork,
    Exec,
    Setuid,
    ScmRights,
    Race,
    Unbind,
    Rebind,
    Rmmod,
    Pressure,
    Hog,
    Fdinfo,
    Observe,
}

pub const OP_NAMES: &[&str] = &[
    "ALLOC",
    "FREE",
    "QUERY",
    "TIER",
    "BANKS",
    "SHARE",
    "IMPORT",
    "CONTROL",
    "RIGHTS",
    "PROCS",
    "RESERVE",
    "SCAVENGE",
    "NOTIFY",
    "read",
    "poll",
    "bad-ioctl",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "write",
    "verify",
    "racy-read",
    "/proc/PID/mem",
    "process_vm_readv",
    "open",
    "close",
    "dup",
    "fork",
    "exec",
    "setuid",
    "SCM_RIGHTS",
    "race",
    "unbind",
    "rebind",
    "rmmod",
    "pressure",
    "hog",
    "fdinfo",
    "debugfs/sysfs",
];

/// The dimensions results are judged in; each is one KTAP result of the fixed slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Dim {
    /// Every return value is one the documentation allows for that call in that state.
    Errno,
    /// Every access faults exactly when it must, with the right signal.
    Fault,
    /// Every page reads back what the model says was written last: nothing lost or exposed.
    Data,
    /// New memory reads as zeros.
    Zero,
    /// Output fields agree with the model (QUERY, TIER, RIGHTS, BANKS, PROCS, IMPORT, events).
    Fields,
    /// Every process of the run ends as it should (no crash, no unexpected signal, no hang).
    Processes,
    /// After the run, banks, free space, pools and owners are back where they started.
    Accounting,
    /// The faults the supervisor injects happen and are survived (unbind/rebind, rmmod refused,
    /// fail_alloc, memory pressure).
    Injection,
}

pub const DIM_NAMES: &[&str] = &[
    "errno",
    "faults",
    "data",
    "zero",
    "fields",
    "processes",
    "accounting",
    "injection",
];

pub const NDIMS: usize = 8;

/// A defect the oracle recognises: a hit is counted, reported with where it was first seen, and
/// fails the run unless tolerated (`--tolerate`).
pub struct Defect {
    pub name: &'static str,
    pub what: &'static str,
}

/// The review findings of issue 10 (items 1-13), and what this campaign found besides.
pub const DEFECTS: &[Defect] = &[
    Defect {
        name: "i10.1-second-node",
        what: "a mapping through a second device node escapes REVOKE or unbind",
    },
    Defect {
        name: "i10.2-ownerless-write",
        what: "a write to an ownerless page through a PTE made writable before succeeds",
    },
    Defect {
        name: "i10.3-notify-signal",
        what: "NOTIFY on another user's file makes the module signal that user's process",
    },
    Defect {
        name: "i10.4-give-anyone",
        what: "GIVE to a process that holds no handle of the allocation succeeds",
    },
    Defect {
        name: "i10.5-offset-space",
        what: "ALLOC fails with EOVERFLOW (mmap offsets used up)",
    },
    Defect {
        name: "i10.6-warn-user-input",
        what: "inputs that WARN in the page allocator (avoided while known)",
    },
    Defect {
        name: "i10.7-reserve-oom",
        what: "RESERVE larger than RAM wakes the OOM killer (avoided while known)",
    },
    Defect {
        name: "i10.8-unbounded",
        what: "unbounded kernel memory per file or user (not exercised: needs 10^5 objects)",
    },
    Defect {
        name: "i10.9-slow-call",
        what: "a call took over a second (quadratic work under a global lock)",
    },
    Defect {
        name: "i10.10-import-same-file",
        what:
            "mmap of a handle fails with EINVAL after a sibling handle of the same file was freed",
    },
    Defect {
        name: "i10.11-unzeroed-system",
        what: "pooled system pages go back unzeroed (not observable from user space)",
    },
    Defect {
        name: "i10.12-release-midway",
        what: "pages of a failed partial release reused while still mapped",
    },
    Defect {
        name: "i10.13-error-path-leak",
        what: "an ALLOC or IMPORT that returned EFAULT left a handle behind",
    },
    Defect {
        name: "new.rdonly-mmap",
        what: "mmap(PROT_READ, MAP_SHARED) of a file opened O_RDONLY fails with EINVAL",
    },
    Defect {
        name: "new.banks-snapshot",
        what: "BANKS reports largest_free or pooled above free: its numbers are not read together",
    },
];

pub mod d {
    pub const SECOND_NODE: usize = 0;
    pub const OWNERLESS_WRITE: usize = 1;
    pub const NOTIFY_SIGNAL: usize = 2;
    pub const GIVE_ANYONE: usize = 3;
    pub const OFFSETS: usize = 4;
    pub const WARN: usize = 5;
    pub const RESERVE_OOM: usize = 6;
    pub const IMPORT_SAME_FILE: usize = 9;
    pub const ERROR_PATH_LEAK: usize = 12;
    pub const RDONLY_MMAP: usize = 13;
    pub const BANKS_SNAPSHOT: usize = 14;
}

const _: () = assert!(DEFECTS.len() <= MAX_DEFECTS);
const _: () = assert!(OP_NAMES.len() == Op::Observe as usize + 1);
const _: () = assert!(DIM_NAMES.len() == NDIMS);

/// Whether defect `i` is known (reported, not failed).
pub fn known(i: usize) -> bool {
    board().known.load(Relaxed) & (1 << i) != 0
}

/// A set of result codes: 0 for success, errnos, and the two signals of memory accesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Codes([u64; 3]);

pub const OK: usize = 0;
pub const SEGV: usize = CODE_SEGV;
pub const BUS: usize = CODE_BUS;

impl Codes {
    pub const fn none() -> Codes {
        Codes([0; 3])
    }

    pub const fn of(codes: &[usize]) -> Codes {
        let mut c = Codes([0; 3]);
        let mut i = 0;
        while i < codes.len() {
            c.0[codes[i] / 64] |= 1 << (codes[i] % 64);
            i += 1;
        }
        c
    }

    pub fn add(&mut self, code: usize) -> &mut Self {
        self.0[code / 64] |= 1 << (code % 64);
        self
    }

    pub fn with(mut self, code: usize) -> Codes {
        self.add(code);
        self
    }

    pub fn union(mut self, o: Codes) -> Codes {
        for i in 0..3 {
            self.0[i] |= o.0[i];
        }
        self
    }

    pub fn has(&self, code: usize) -> bool {
        code < NCODES && self.0[code / 64] & (1 << (code % 64)) != 0
    }

    pub fn names(&self) -> String {
        (0..NCODES)
            .filter(|&c| self.has(c))
            .map(code_name)
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// The name of a result code.
pub fn code_name(c: usize) -> String {
    match c {
        0 => "ok".into(),
        CODE_SEGV => "SIGSEGV".into(),
        CODE_BUS => "SIGBUS".into(),
        e => errno_name(e as i32),
    }
}

pub fn errno_name(e: i32) -> String {
    let n = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENXIO => "ENXIO",
        _ => return format!("errno{e}"),
    };
    n.into()
}

/// Who this process is, and where it is in its run: what a failure report says.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    pub seed: u64,
    pub inst: u32,
    pub pid: i32,
    /// "worker 3 gen 2", "child of 17 (fork)", ...
    pub role: String,
    pub op_index: u64,
    /// The operation under way, with its arguments.
    pub what: String,
}

impl Ctx {
    /// Counts a check in dimension `dim`.
    pub fn checked(&self, dim: Dim) {
        board().dim_checks[dim as usize].fetch_add(1, Relaxed);
    }

    /// A failure in dimension `dim`.
    pub fn fail(&self, dim: Dim, why: &str) {
        let b = board();
        b.dim_checks[dim as usize].fetch_add(1, Relaxed);
        b.dim_fails[dim as usize].fetch_add(1, Relaxed);
        let mut t = format!(
            "[{}] seed {} {} (instance {}, pid {}) op #{} {}: {}",
            DIM_NAMES[dim as usize],
            self.seed,
            self.role,
            self.inst,
            self.pid,
            self.op_index,
            self.what,
            why
        );
        t.truncate(FAIL_LEN);
        b.fail_text(&t);
    }

    /// Judges `code` for `op` against `allowed`; counts it in the errno table.
    pub fn judge(&self, op: Op, code: usize, allowed: Codes) -> bool {
        self.judge_in(Dim::Errno, op, code, allowed)
    }

    /// Judges `code` for `op` against `allowed` in dimension `dim`.
    pub fn judge_in(&self, dim: Dim, op: Op, code: usize, allowed: Codes) -> bool {
        board().count(op as usize, code);
        self.checked(dim);
        if allowed.has(code) {
            return true;
        }
        self.fail(
            dim,
            &format!("got {}, allowed {}", code_name(code), allowed.names()),
        );
        false
    }

    /// Judges without counting a failure: whether `code` is allowed (the caller classifies).
    pub fn count_only(&self, op: Op, code: usize) {
        board().count(op as usize, code);
    }

    /// Defect `i` happened: counted, and a failure in `dim` unless it is known. Returns whether
    /// it is known.
    pub fn defect(&self, i: usize, dim: Dim, detail: &str) -> bool {
        let b = board();
        let first = b.defects[i].fetch_add(1, Relaxed) == 0;
        if first {
            let mut t = format!(
                "seed {} {} (instance {}, pid {}) op #{} {}: {detail}",
                self.seed, self.role, self.inst, self.pid, self.op_index, self.what
            );
            t.truncate(FAIL_LEN);
            b.defect_text(i, &t);
        }
        if known(i) {
            return true;
        }
        self.fail(dim, &format!("defect {}: {detail}", DEFECTS[i].name));
        false
    }
}

/// The codes a call may return, built from the conditions that make it fail: each condition
/// that may hold allows its errno; success is allowed unless one surely holds. The
/// documentation lists errnos without an order, so any applicable one is accepted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Exp {
    codes: Codes,
    must_fail: bool,
}

impl Exp {
    pub fn new() -> Exp {
        Exp::default()
    }

    /// Condition `t` makes the call fail with `errno`.
    pub fn on(&mut self, errno: i32, t: crate::model::Tri) -> &mut Self {
        use crate::model::Tri;
        if t != Tri::No {
            self.codes.add(errno as usize);
        }
        if t == Tri::Yes {
            self.must_fail = true;
        }
        self
    }

    /// Condition `b` (certain) makes the call fail with `errno`.
    pub fn when(&mut self, errno: i32, b: bool) -> &mut Self {
        self.on(errno, crate::model::Tri::of(b))
    }

    /// The call may also fail with `errno` (a resource running out).
    pub fn also(&mut self, errno: i32) -> &mut Self {
        self.codes.add(errno as usize);
        self
    }

    pub fn must_fail(&self) -> bool {
        self.must_fail
    }

    pub fn codes(&self) -> Codes {
        if self.must_fail {
            self.codes
        } else {
            self.codes.with(OK)
        }
    }
}

/// The code of a syscall result: 0, or its errno.
pub fn code_of<T>(r: &Result<T, i32>) -> usize {
    match r {
        Ok(_) => 0,
        Err(e) => (*e as usize).min(NCODES - 1),
    }
}
