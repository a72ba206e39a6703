//! The operation generator of one process (or thread): it chooses an operation and its
//! arguments from its random stream, computes from its model and the board what the ABI allows,
//! makes the call, judges the result and updates the model.
//!
//! This file has the loop and the ioctls; `memops.rs` the mappings and memory accesses;
//! `children.rs` the descriptors and the processes (fork, exec, setuid, SCM_RIGHTS).

use crate::{
    board::{board, Who, ALIVE, DEAD, MAX_BANKS, TRACK},
    model::{is_me, may_read, may_write, owns, view_in, ARef, HandleM, Me, Model, Priv, Tri},
    oracle::{code_of, d, Codes, Ctx, Dim, Exp, Op, OK},
    rng::Rng,
};
use moreram::sys;
use std::{
    os::fd::BorrowedFd,
    sync::atomic::Ordering::{Acquire, Relaxed},
    time::Instant,
};

pub const PAGE: u64 = 4096;
pub const MAX_ALLOC: u64 = 1 << 40;
/// Beyond any pid the kernel hands out (PID_MAX_LIMIT is 4 Mi).
pub const NO_PID: i32 = 4_194_304 + 17;

/// What kind of process or thread runs the engine, which decides the operations it makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A worker process's main thread: everything.
    Worker,
    /// A forked, exec'd, setuid or descriptor-receiving child: a short burst, no children.
    Child,
    /// A worker's second thread: its own file, private allocations, no descriptors games.
    Chaos,
}

/// A token this process made.
pub struct MyToken {
    pub file: u32,
    pub handle: u32,
    pub a: ARef,
    pub token: u64,
}

pub struct Engine {
    pub rng: Rng,
    pub ctx: Ctx,
    pub m: Model,
    pub kind: Kind,
    pub budget: u64,
    pub deadline: Instant,
    /// Bank sizes by index, from the last BANKS.
    pub bank_sizes: Vec<(u32, u64)>,
    pub epochs_seen: [u32; MAX_BANKS],
    pub tokens: Vec<MyToken>,
    /// A large VRAM allocation held to push a bank under its watermarks: (file, handle, ops
    /// left).
    pub hog: Option<(u32, u32, u64)>,
    /// A page mapped read-only, for arguments the kernel can read but not write back.
    pub ro_page: usize,
    /// Children made so far (their random streams).
    pub children: u64,
    /// Use the board for small allocations (false: everything private, as the chaos thread).
    pub use_board: bool,
    /// Bytes of RAM of the machine.
    pub total_ram: u64,
    /// Path of a second device node for /dev/moreram, if the supervisor made one.
    pub alt_node: Option<std::ffi::CString>,
    /// Strict checks of the known defects' inputs (RESERVE of huge sizes).
    pub strict_inputs: bool,
    /// For a child: the parent, whose file its handles live in (and so its tokens).
    pub parent: Option<u32>,
    /// For a forked child: the parent's mappings, to read through /proc/PPID/mem.
    pub parent_maps: Vec<crate::model::MapM>,
    /// Coverage of the module's code by this thread's calls.
    pub kcov: Option<crate::kcov::Kcov>,
}

/// The ioctl wrapper: `Err(errno)`.
pub fn ioctl<T>(fd: i32, cmd: u32, arg: *mut T) -> Result<(), i32> {
    // SAFETY: `fd` may be anything (EBADF); `arg` is what the caller chose to pass, maybe a bad
    // pointer on purpose: the kernel copies through it with fault handling.
    let r = unsafe { sys::ioctl(BorrowedFd::borrow_raw(fd), cmd, arg) };
    r.map(drop)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The start of each bank's unbind epochs.
pub fn epochs() -> [(u32, u32); MAX_BANKS] {
    let mut e = [(0, 0); MAX_BANKS];
    for (i, b) in board().banks.iter().enumerate() {
        e[i] = (b.started.load(Acquire), b.done.load(Acquire));
    }
    e
}

/// Whether an unbind is under way or happened since `seen`.
pub fn flux(seen: &[u32; MAX_BANKS]) -> bool {
    board()
        .banks
        .iter()
        .zip(seen)
        .any(|(b, &s)| b.started.load(Acquire) != s || b.done.load(Acquire) != s)
}

/// The kinds of operation, with their weights for a worker, a child and a chaos thread.
pub const KINDS: &[(u8, u32, u32, u32, &str)] = &[
    (0, 140, 60, 100, "ALLOC"),
    (1, 70, 30, 80, "FREE"),
    (2, 40, 40, 30, "QUERY"),
    (3, 25, 20, 30, "TIER"),
    (4, 10, 10, 15, "BANKS"),
    (5, 45, 10, 0, "SHARE"),
    (6, 55, 20, 0, "IMPORT"),
    (7, 70, 30, 20, "CONTROL"),
    (8, 35, 20, 20, "RIGHTS"),
    (9, 8, 5, 10, "PROCS"),
    (10, 12, 5, 10, "RESERVE"),
    (11, 10, 5, 10, "SCAVENGE"),
    (12, 5, 5, 5, "NOTIFY"),
    (13, 15, 5, 20, "events"),
    (14, 15, 10, 10, "bad-ioctl"),
    (15, 110, 50, 80, "mmap"),
    (16, 50, 20, 50, "munmap"),
    (17, 12, 5, 5, "mremap"),
    (18, 25, 10, 10, "mprotect"),
    (19, 12, 5, 5, "madvise"),
    (20, 130, 50, 100, "write"),
    (21, 120, 60, 100, "verify"),
    (22, 15, 5, 10, "racy read"),
    (23, 6, 5, 3, "procmem"),
    (24, 12, 0, 0, "open"),
    (25, 10, 0, 0, "close"),
    (26, 6, 0, 0, "dup"),
    (27, 5, 0, 0, "children"),
    (28, 8, 0, 0, "race"),
    (29, 2, 0, 0, "hog"),
    (30, 5, 3, 4, "fdinfo"),
];

/// Whether every operation is printed to stderr (`MORERAM_FUZZ_TRACE=1`).
pub fn trace() -> bool {
    static T: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *T.get_or_init(|| std::env::var_os("MORERAM_FUZZ_TRACE").is_some())
}

/// Bad argument pointers: NULL, an unmapped page, a kernel address.
pub const BAD_PTRS: [usize; 3] = [0, 0x1000, 0xffff_8000_0000_0000];

impl Engine {
    pub fn what(&mut self, s: String) {
        self.ctx.what = s;
    }

    /// Refreshes the bank sizes (BANKS) and the epochs they go with.
    pub fn refresh_banks(&mut self) {
        let Some(fd) = self.any_fd() else { return };
        let seen = epochs();
        let mut infos = vec![sys::moreram_bank_info::default(); 8];
        let mut req = sys::moreram_banks {
            capacity: 8,
            entry_size: std::mem::size_of::<sys::moreram_bank_info>() as u32,
            banks_ptr: infos.as_mut_ptr() as u64,
            ..Default::default()
        };
        if ioctl(fd, sys::MORERAM_IOC_BANKS, &mut req).is_ok() {
            self.bank_sizes = infos[..(req.count as usize).min(8)]
                .iter()
                .map(|b| (b.index, b.size))
                .collect();
            for (i, e) in seen.iter().enumerate() {
                self.epochs_seen[i] = if e.0 == e.1 { e.0 } else { u32::MAX };
            }
        }
    }

    pub fn any_fd(&self) -> Option<i32> {
        self.m
            .files
            .iter()
            .find(|f| !f.fds.is_empty())
            .map(|f| f.fds[0])
    }

    /// A file with a descriptor, at random.
    pub fn pick_file(&mut self) -> Option<usize> {
        let with: Vec<usize> = (0..self.m.files.len())
            .filter(|&i| !self.m.files[i].fds.is_empty())
            .collect();
        self.rng.pick(&with).copied()
    }

    pub fn fd_of(&mut self, fi: usize) -> i32 {
        let fds = &self.m.files[fi].fds;
        fds[self.rng.below(fds.len() as u64) as usize]
    }

    /// One of the file's handles, preferring this process's own.
    pub fn pick_handle(&mut self, fi: usize, mine: bool) -> Option<HandleM> {
        let me = self.m.me.inst;
        let hs: Vec<&HandleM> = self.m.files[fi]
            .handles
            .iter()
            .filter(|h| !h.opaque && (!mine || h.holder == me))
            .collect();
        if hs.is_empty() {
            return None;
        }
        Some(hs[self.rng.below(hs.len() as u64) as usize].clone())
    }

    /// A handle number the file does not have (never had, or freed).
    fn dead_handle(&mut self, fi: usize) -> u32 {
        let f = &self.m.files[fi];
        if f.leaked > 0 {
            // A leaked handle could be any number above the ones we know.
            return 0;
        }
        loop {
            let h = match self.rng.below(3) {
                0 => 0,
                1 => f.max_handle + 1000 + self.rng.below(1000) as u32,
                _ => self.rng.range(1, u64::from(f.max_handle.max(1))) as u32,
            };
            if !f.handles.iter().any(|x| x.h == h) && (h <= f.max_handle || h > f.max_handle + 100)
            {
                return h;
            }
        }
    }

    /// Runs until the budget, the deadline or the supervisor says stop.
    pub fn run(&mut self) {
        self.refresh_banks();
        while self.ctx.op_index < self.budget
            && !board().stopping()
            && Instant::now() < self.deadline
        {
            self.ctx.op_index += 1;
            if flux(&self.epochs_seen)
                && board()
                    .banks
                    .iter()
                    .all(|b| b.started.load(Acquire) == b.done.load(Acquire))
            {
                self.refresh_banks();
            }
            let t0 = Instant::now();
            let op = self.step();
            let us = t0.elapsed().as_micros() as u64;
            if trace() {
                eprintln!(
                    "{} #{}: {}",
                    self.ctx.role, self.ctx.op_index, self.ctx.what
                );
            }
            board().op_us[op].fetch_add(us, Relaxed);
            board().op_n[op].fetch_add(1, Relaxed);
            self.note_slow(us);
            board().ops.fetch_add(1, Relaxed);
            if let Some(k) = self.kcov.as_mut() {
                k.collect();
            }
        }
    }

    /// Keeps the slowest operation's time, for the report. (Wall-clock time says little here:
    /// dozens of threads share two emulated CPUs.)
    fn note_slow(&mut self, us: u64) {
        let b = board();
        if us > b.slowest_us.load(Relaxed) {
            b.slowest_us.store(us, Relaxed);
        }
    }

    /// Makes one operation; returns its index in the table of kinds (for timing).
    fn step(&mut self) -> usize {
        if let Some((f, h, left)) = self.hog {
            if left == 0 {
                self.hog_release(f, h);
            } else {
                self.hog = Some((f, h, left - 1));
            }
        }
        const OPS: &[(u8, u32, u32, u32, &str)] = KINDS;
        let col = |o: &(u8, u32, u32, u32, &str)| match self.kind {
            Kind::Worker => o.1,
            Kind::Child => o.2,
            Kind::Chaos => o.3,
        };
        let weights: Vec<u32> = OPS.iter().map(col).collect();
        let mut op = OPS[self.rng.weighted(&weights)].0;
        // Near the end, nothing that takes seconds (children, races, hogging a bank).
        if (27..=29).contains(&op)
            && self
                .deadline
                .saturating_duration_since(Instant::now())
                .as_secs()
                < 4
        {
            op = 21;
        }
        if self.m.files.iter().all(|f| f.fds.is_empty()) && self.kind != Kind::Child {
            self.op_open();
            return 24;
        }
        match op {
            0 => self.op_alloc(),
            1 => self.op_free(),
            2 => self.op_query(),
            3 => self.op_tier(),
            4 => self.op_banks(),
            5 => self.op_share(),
            6 => self.op_import(),
            7 => self.op_control(),
            8 => self.op_rights(),
            9 => self.op_procs(),
            10 => self.op_reserve(),
            11 => self.op_scavenge(),
            12 => self.op_notify(),
            13 => self.op_events(),
            14 => self.op_bad_ioctl(),
            15 => self.op_mmap(),
            16 => self.op_munmap(),
            17 => self.op_mremap(),
            18 => self.op_mprotect(),
            19 => self.op_madvise(),
            20 => self.op_write(),
            21 => self.op_verify(),
            22 => self.op_racy_read(),
            23 => self.op_procmem(),
            24 => self.op_open(),
            25 => self.op_close(),
            26 => self.op_dup(),
            27 => self.op_child(),
            28 => self.op_race(),
            29 => self.op_hog(),
            _ => self.op_fdinfo(),
        }
        op as usize
    }

    // --- allocation ------------------------------------------------------------------------

    /// Bytes of a random allocation: mostly small, sometimes larger, rarely odd.
    fn alloc_size(&mut self) -> u64 {
        match self.rng.weighted(&[70, 20, 6, 4]) {
            0 => self.rng.range(1, 8) * PAGE,
            1 => self.rng.range(9, TRACK as u64) * PAGE,
            2 => self.rng.range(TRACK as u64 + 1, 512) * PAGE,
            _ => match self.rng.below(6) {
                0 => 0,
                1 => self.rng.range(1, PAGE - 1),
                2 => PAGE + self.rng.range(1, PAGE - 1),
                3 => MAX_ALLOC + PAGE,
                4 => !(PAGE - 1),
                _ => MAX_ALLOC,
            },
        }
    }

    fn max_bank(&self) -> u64 {
        self.bank_sizes.iter().map(|b| b.1).max().unwrap_or(0)
    }

    fn bank_size(&self, b: u32) -> Option<u64> {
        self.bank_sizes.iter().find(|x| x.0 == b).map(|x| x.1)
    }

    pub fn op_alloc(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let mut size = self.alloc_size();
        let flag_sets: &[u32] = &[
            0,
            0,
            0,
            sys::MORERAM_ALLOC_SYSTEM_ONLY,
            sys::MORERAM_ALLOC_SYSTEM_ONLY,
            sys::MORERAM_ALLOC_VRAM_ONLY,
            sys::MORERAM_ALLOC_BANK,
            sys::MORERAM_ALLOC_CONTIGUOUS,
            sys::MORERAM_ALLOC_VRAM_ONLY | sys::MORERAM_ALLOC_CONTIGUOUS,
            sys::MORERAM_ALLOC_BANK | sys::MORERAM_ALLOC_CONTIGUOUS,
            sys::MORERAM_ALLOC_BANK | sys::MORERAM_ALLOC_VRAM_ONLY,
        ];
        let mut flags = *self.rng.pick(flag_sets).unwrap_or(&0);
        if self.rng.one_in(3) {
            flags |= sys::MORERAM_ALLOC_FORK_COPY;
        }
        let mut bank = if flags & sys::MORERAM_ALLOC_BANK != 0 {
            let wide = self.rng.one_in(10);
            self.rng.below(if wide { 8 } else { 2 }) as u32
        } else {
            0
        };
        // Invalid combinations.
        let bad = self.rng.weighted(&[88, 2, 2, 2, 2, 1, 1, 1, 1]);
        let mut req = sys::moreram_alloc::default();
        match bad {
            1 => flags |= 1 << (5 + self.rng.below(27)),
            2 => {
                flags = sys::MORERAM_ALLOC_SYSTEM_ONLY
                    | [
                        sys::MORERAM_ALLOC_VRAM_ONLY,
                        sys::MORERAM_ALLOC_BANK,
                        sys::MORERAM_ALLOC_CONTIGUOUS,
                    ][self.rng.below(3) as usize]
            }
            3 => {
                flags &= !sys::MORERAM_ALLOC_BANK;
                bank = 1 + self.rng.below(3) as u32;
            }
            4 => req.reserved[self.rng.below(4) as usize] = 1 + self.rng.below(9),
            5 => req.reserved0 = 1,
            6 => req.handle = 1,
            7 => req.mmap_offset = PAGE,
            8 => req.tier = 1,
            _ => {}
        }
        if self.kind == Kind::Child && size > TRACK as u64 * PAGE {
            size = PAGE * self.rng.range(1, 8);
        }
        // Never ask default placement for huge sizes that could fit in RAM: the OOM killer
        // would come (only more than RAM is refused at once).
        let vram_only = flags & (sys::MORERAM_ALLOC_VRAM_ONLY | sys::MORERAM_ALLOC_BANK) != 0;
        if !vram_only && size > 4 << 20 && size <= self.total_ram * 2 {
            size = self.rng.range(1, 64) * PAGE;
        }
        req.size = size;
        req.flags = flags;
        req.bank = bank;
        let ptr_kind = self.rng.weighted(&[95, 2, 3]);
        self.what(format!(
            "ALLOC fd {fd} size {size:#x} flags {flags:#x} bank {bank} bad {bad} ptr {ptr_kind}"
        ));

        let structural = size == 0
            || size % PAGE != 0
            || size > MAX_ALLOC
            || flags & !sys::MORERAM_ALLOC_FLAGS_ALL != 0
            || (flags & sys::MORERAM_ALLOC_SYSTEM_ONLY != 0
                && flags
                    & (sys::MORERAM_ALLOC_VRAM_ONLY
                        | sys::MORERAM_ALLOC_BANK
                        | sys::MORERAM_ALLOC_CONTIGUOUS)
                    != 0)
            || (flags & sys::MORERAM_ALLOC_BANK == 0 && bank != 0)
            || bad >= 4;
        let injecting = board().failing.load(Relaxed) != 0;
        let moving = flux(&self.epochs_seen);
        let mut exp = Exp::new();
        if ptr_kind == 1 {
            exp.when(libc::EFAULT, true);
        } else if structural {
            exp.when(libc::EINVAL, true);
        } else {
            if injecting {
                exp.also(libc::ENOMEM);
            }
            let system = flags & sys::MORERAM_ALLOC_SYSTEM_ONLY != 0;
            if system || !vram_only {
                exp.when(libc::ENOMEM, size > self.total_ram);
            }
            if flags & sys::MORERAM_ALLOC_BANK != 0 {
                match self.bank_size(bank) {
                    None => {
                        exp.when(libc::ENODEV, !moving);
                        if moving {
                            exp.also(libc::ENODEV).also(libc::E2BIG).also(libc::ENOSPC);
                        }
                    }
                    Some(bs) => {
                        exp.when(libc::E2BIG, size > bs);
                        exp.also(libc::ENOSPC);
                        if moving {
                            exp.also(libc::ENODEV);
                        }
                    }
                }
            } else if flags & sys::MORERAM_ALLOC_VRAM_ONLY != 0 {
                exp.when(
                    libc::E2BIG,
                    size > self.max_bank() && !self.bank_sizes.is_empty(),
                );
                exp.when(libc::ENODEV, self.bank_sizes.is_empty() && !moving);
                exp.also(libc::ENOSPC);
                if moving {
                    exp.also(libc::ENODEV).also(libc::E2BIG);
                }
            }
            if ptr_kind == 2 && !exp.must_fail() {
                // Read, done, and not written back.
                exp.when(libc::EFAULT, true);
            }
        }
        let e0 = epochs();
        let arg = match ptr_kind {
            1 => BAD_PTRS[self.rng.below(3) as usize] as *mut sys::moreram_alloc,
            2 => self.ro_arg(&req),
            _ => &mut req as *mut _,
        };
        let r = ioctl(fd, sys::MORERAM_IOC_ALLOC, arg);
        let e1 = epochs();
        let code = code_of(&r);
        if code == libc::EOVERFLOW as usize {
            self.ctx.count_only(Op::Alloc, code);
            self.ctx.defect(
                d::OFFSETS,
                Dim::Errno,
                "ALLOC: EOVERFLOW (mmap offsets used up)",
            );
            return;
        }
        if ptr_kind == 2 && code == libc::EFAULT as usize && !structural {
            // The allocation may be made and kept under a handle we never learn (issue 10,
            // item 13); TIER tells.
            self.m.files[fi].leaked += 1;
        }
        let mut allowed = exp.codes();
        if e0 != e1 || flux(&self.epochs_seen) {
            // An unbind began or ended during the call.
            allowed = allowed
                .with(libc::ENODEV as usize)
                .with(libc::E2BIG as usize)
                .with(libc::ENOSPC as usize);
        }
        self.ctx.judge(Op::Alloc, code, allowed);
        if r.is_err() || ptr_kind != 0 || structural {
            return;
        }
        // Where it went.
        let vram = req.tier == sys::MORERAM_TIER_VRAM;
        self.ctx.checked(Dim::Fields);
        let placed_ok = match (req.tier, flags) {
            (t, f) if f & sys::MORERAM_ALLOC_SYSTEM_ONLY != 0 => {
                t == sys::MORERAM_TIER_SYSTEM && req.bank_used == sys::MORERAM_NO_BANK
            }
            (t, f) if f & sys::MORERAM_ALLOC_BANK != 0 => {
                t == sys::MORERAM_TIER_VRAM && req.bank_used == bank
            }
            (t, f) if f & sys::MORERAM_ALLOC_VRAM_ONLY != 0 => {
                t == sys::MORERAM_TIER_VRAM && (req.bank_used as usize) < MAX_BANKS
            }
            (sys::MORERAM_TIER_VRAM, _) => (req.bank_used as usize) < MAX_BANKS,
            (sys::MORERAM_TIER_SYSTEM, _) => req.bank_used == sys::MORERAM_NO_BANK,
            _ => false,
        };
        let f = &self.m.files[fi];
        if !placed_ok
            || req.handle <= f.max_handle
            || req.mmap_offset % PAGE != 0
            || req.mmap_offset == 0
        {
            self.ctx.fail(
                Dim::Fields,
                &format!(
                    "ALLOC returned tier {} bank {} handle {} (max before {}) offset {:#x}",
                    req.tier, req.bank_used, req.handle, f.max_handle, req.mmap_offset
                ),
            );
        }
        let bank_used = req.bank_used;
        let (bi, certain) = if vram && (bank_used as usize) < MAX_BANKS {
            let (s0, d0) = e0[bank_used as usize];
            let (s1, d1) = e1[bank_used as usize];
            let certain = s0 == s1 && d0 == s0 && d1 == s1;
            // Uncertain: the ALLOC overlapped an unbind, maybe a whole unbind and rebind, and
            // may have landed in the old device or the new one; only an unbind that starts
            // after it returned surely takes it away.
            (if certain { s0 } else { s1 }, u32::from(certain))
        } else {
            (0, 1)
        };
        self.adopt(
            fi,
            req.handle,
            size / PAGE,
            req.mmap_offset,
            vram,
            bank_used,
            flags,
            (bi, certain),
        );
    }

    /// Records a new allocation of this process, handle `h` of file `fi`, owned by it.
    #[allow(clippy::too_many_arguments)]
    pub fn adopt(
        &mut self,
        fi: usize,
        h: u32,
        npages: u64,
        offset: u64,
        vram: bool,
        bank: u32,
        flags: u32,
        (epoch, certain): (u32, u32),
    ) {
        let me = self.m.me;
        let slot = if self.use_board && npages <= TRACK as u64 {
            board().new_entry(self.rng.below(1 << 20) as usize)
        } else {
            None
        };
        let uid = match slot {
            Some((_, uid)) => uid,
            None => board().next_uid.fetch_add(1, Relaxed),
        };
        let a = ARef {
            uid,
            slot: slot.map(|s| s.0),
        };
        if slot.is_none() {
            self.m.privs.insert(
                uid,
                Priv {
                    meta: Default::default(),
                    pages: vec![Default::default(); npages as usize],
                },
            );
        }
        if let Some(mut v) = view_in(&mut self.m.privs, a) {
            // The page records the view shows are the allocation's: its size first.
            v.meta_mut().npages = npages as u32;
            let (meta, pages) = v.split();
            meta.creator = me.inst;
            meta.creator_pid = me.pid;
            meta.creator_euid = me.euid;
            meta.npages = npages as u32;
            meta.vram = u32::from(vram);
            meta.bank = bank;
            meta.bank_epoch = epoch;
            meta.epoch_certain = certain;
            meta.flags = flags;
            meta.offset = offset;
            meta.add_holder(me.inst);
            for p in pages.iter_mut() {
                p.owner = Who::Inst(me.inst).encode();
            }
            v.note(&format!(
                "inst {} #{} {} [handle {h}]",
                me.inst, self.ctx.op_index, self.ctx.what
            ));
        }
        self.note_handle(fi);
        let f = &mut self.m.files[fi];
        f.max_handle = f.max_handle.max(h);
        f.handles.push(HandleM {
            h,
            a,
            holder: me.inst,
            npages,
            offset,
            vram,
            bank,
            flags,
            opaque: false,
        });
    }

    /// A handle of this process was made in file `fi`: if the file outlives the process, so do
    /// the handle, the pages' rights and the tokens made from it.
    pub fn note_handle(&self, fi: usize) {
        if self.m.files[fi].owner_inst != self.m.me.inst {
            board().set_lingers(self.m.me.inst);
        }
    }

    /// Puts `req` in the read-only page and returns a pointer to it there.
    fn ro_arg<T: Copy>(&self, req: &T) -> *mut T {
        let p = self.ro_page as *mut T;
        // SAFETY: the page is ours; it is made writable just for the copy.
        unsafe {
            libc::mprotect(p.cast(), PAGE as usize, libc::PROT_READ | libc::PROT_WRITE);
            p.write(*req);
            libc::mprotect(p.cast(), PAGE as usize, libc::PROT_READ);
        }
        p
    }

    pub fn op_free(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let me = self.m.me;
        let kind = self.rng.weighted(&[80, 6, 8, 3, 3]);
        let (handle, hm) = match kind {
            0 => match self.pick_handle(fi, true) {
                Some(h) => (h.h, Some(h)),
                None => return,
            },
            1 => match self.pick_handle(fi, false) {
                Some(h) => (h.h, Some(h)),
                None => return,
            },
            _ => (self.dead_handle(fi), None),
        };
        let mut req = sys::moreram_handle {
            handle,
            ..Default::default()
        };
        if kind == 3 {
            req.reserved[self.rng.below(2) as usize] = 1;
        }
        let bad_ptr = kind == 4;
        self.what(format!("FREE fd {fd} handle {handle} kind {kind}"));
        let mut exp = Exp::new();
        if bad_ptr {
            exp.when(libc::EFAULT, true);
        } else {
            exp.when(libc::EINVAL, kind == 3);
            match &hm {
                None => {
                    exp.when(libc::ENOENT, true);
                }
                Some(h) => {
                    exp.when(libc::EPERM, h.holder != me.inst);
                }
            }
            if hm.is_none() && self.m.files[fi].leaked > 0 {
                exp.also(libc::EPERM).also(OK as i32);
            }
            if hm.is_none() && self.m.files[fi].crowded {
                exp.also(libc::EPERM).also(OK as i32);
            }
        }
        let arg: *mut sys::moreram_handle = if bad_ptr {
            BAD_PTRS[self.rng.below(3) as usize] as *mut _
        } else {
            &mut req
        };
        // Freeing this process's handle changes the ownership of pages: under the entry's lock.
        let mine = hm
            .as_ref()
            .filter(|h| h.holder == me.inst && kind <= 1)
            .cloned();
        let mut guard = mine
            .as_ref()
            .and_then(|h| h.a.slot.map(|s| (s, h.a.uid)))
            .map(|(s, uid)| (board().entries[s].lock(), uid));
        if let Some((l, uid)) = &guard {
            if l.meta.uid != *uid {
                guard = None;
            }
        }
        let r = ioctl(fd, sys::MORERAM_IOC_FREE, arg);
        let code = code_of(&r);
        let ok = self.ctx.judge(Op::Free, code, exp.codes());
        if r.is_ok() && ok {
            if let Some(h) = mine {
                self.forget_handle(fi, &h, guard.map(|g| g.0));
            }
        }
    }

    /// Handle `h` of file `fi`, held by this process, is gone: update the model and the board
    /// (under `locked`, the entry's lock, if the caller holds it).
    pub fn forget_handle(
        &mut self,
        fi: usize,
        h: &HandleM,
        locked: Option<crate::board::Locked<'static>>,
    ) {
        let me = self.m.me;
        let f = &mut self.m.files[fi];
        f.handles.retain(|x| x.h != h.h);
        let siblings = f.handles.iter().any(|x| x.a == h.a);
        if siblings {
            f.sibling_freed = true;
        } else {
            f.stale_offsets.push(h.offset);
        }
        let last = self.m.my_handles(h.a) == 0;
        // Tokens made from this handle die with it.
        let mut dead_tokens = Vec::new();
        self.tokens.retain(|t| {
            let dies = t.file == self.m.files[fi].id && t.handle == h.h;
            if dies {
                dead_tokens.push(t.token);
            }
            !dies
        });
        let apply = |meta: &mut crate::board::Meta, pages: &mut [crate::board::PageRec]| {
            if dead_tokens.contains(&meta.token) && meta.token_live != 0 {
                meta.token_live = 0;
                board().retire_token(meta.token);
            }
            if last {
                meta.remove_holder(me.inst);
                for p in pages.iter_mut() {
                    if p.owner() == Who::Inst(me.inst) {
                        p.owner = Who::Nobody.encode();
                        p.clear_writers();
                    }
                }
            }
        };
        match (h.a.slot, locked) {
            (Some(_), Some(mut l)) => {
                let d = &mut *l;
                let n = (d.meta.npages as usize).min(TRACK);
                apply(&mut d.meta, &mut d.pages[..n]);
                let t = format!(
                    "inst {} #{} forgot handle {} of file {} (last {last}, tokens {dead_tokens:x?})",
                    me.inst,
                    self.ctx.op_index,
                    h.h,
                    self.m.files[fi].id
                );
                d.hist.note(d.meta.uid, &t);
            }
            (Some(_), None) => {}
            (None, _) => {
                if let Some(p) = self.m.privs.get_mut(&h.a.uid) {
                    apply(&mut p.meta, &mut p.pages);
                }
            }
        }
        self.drop_ref(h.a);
    }

    /// The model no longer refers to `a` anywhere: let go of the board entry.
    pub fn drop_ref(&mut self, a: ARef) {
        if self.m.refers(a) {
            return;
        }
        match a.slot {
            Some(s) => board().entry_unref(s, a.uid),
            None => {
                self.m.privs.remove(&a.uid);
            }
        }
    }

    pub fn op_query(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let me = self.m.me;
        let kind = self.rng.weighted(&[85, 8, 4, 3]);
        let hm = if kind == 0 {
            self.pick_handle(fi, false)
        } else {
            None
        };
        let handle = hm.as_ref().map_or_else(|| self.dead_handle(fi), |h| h.h);
        let mut req = sys::moreram_query {
            handle,
            ..Default::default()
        };
        if kind == 2 {
            match self.rng.below(4) {
                0 => req.size = 1,
                1 => req.mappings = 1,
                2 => req.reserved[3] = 1,
                _ => req.tier = 1,
            }
        }
        self.what(format!("QUERY fd {fd} handle {handle} kind {kind}"));
        let mut exp = Exp::new();
        let mut view_ok = true;
        let mut expect_fields = None;
        if kind == 3 {
            exp.when(libc::EFAULT, true);
        } else {
            exp.when(libc::EINVAL, kind == 2);
            match &hm {
                None => {
                    exp.when(libc::ENOENT, true);
                    if self.m.files[fi].leaked > 0 || self.m.files[fi].crowded {
                        exp.also(libc::EACCES).also(OK as i32);
                    }
                }
                Some(h) => match view_in(&mut self.m.privs, h.a) {
                    Some(v) => {
                        exp.on(libc::EACCES, may_read(v.meta(), v.pages(), &me).not());
                        expect_fields = Some((
                            v.meta().npages as u64 * PAGE,
                            v.meta().vram,
                            v.meta().bank,
                            v.meta().flags,
                            v.meta().offset,
                        ));
                    }
                    None => view_ok = false,
                },
            }
        }
        if !view_ok {
            return;
        }
        let arg: *mut sys::moreram_query = if kind == 3 {
            BAD_PTRS[self.rng.below(3) as usize] as *mut _
        } else {
            &mut req
        };
        let r = ioctl(fd, sys::MORERAM_IOC_QUERY, arg);
        if !self.ctx.judge(Op::Query, code_of(&r), exp.codes()) || r.is_err() {
            return;
        }
        if let (Some(h), Some((size, vram, bank, flags, offset))) = (&hm, expect_fields) {
            self.ctx.checked(Dim::Fields);
            let tier = if vram != 0 {
                sys::MORERAM_TIER_VRAM
            } else {
                sys::MORERAM_TIER_SYSTEM
            };
            let want_bank = if vram != 0 {
                bank
            } else {
                sys::MORERAM_NO_BANK
            };
            let mine = self.m.vmas_of(h.a);
            if req.mappings < mine {
                let pieces: Vec<String> = self
                    .m
                    .maps
                    .iter()
                    .filter(|m| m.a == h.a)
                    .map(|m| crate::memops::where_is(m.addr, &[]))
                    .collect();
                self.ctx
                    .what
                    .push_str(&format!(" [pieces: {}]", pieces.join(" | ")));
            }
            if req.size != size
                || req.tier != tier
                || req.bank != want_bank
                || req.flags != flags
                || req.mmap_offset != offset
                || req.mappings < mine
                || req.reserved0 != 0
                || req.reserved != [0; 4]
            {
                self.ctx.fail(
                    Dim::Fields,
                    &format!(
                        "QUERY: size {:#x} tier {} bank {} flags {:#x} offset {:#x} mappings {}; \
                         model: size {size:#x} tier {tier} bank {want_bank} flags {flags:#x} \
                         offset {offset:#x} mappings >= {mine}",
                        req.size, req.tier, req.bank, req.flags, req.mmap_offset, req.mappings
                    ),
                );
            }
        }
    }

    pub fn op_tier(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let kind = self.rng.weighted(&[90, 6, 4]);
        let mut req = sys::moreram_tier::default();
        if kind == 1 {
            match self.rng.below(3) {
                0 => req.file_allocs = 1,
                1 => req.reserved[1] = 1,
                _ => req.vram_free = 1,
            }
        }
        self.what(format!("TIER fd {fd} kind {kind}"));
        let mut exp = Exp::new();
        exp.when(libc::EINVAL, kind == 1);
        exp.when(libc::EFAULT, kind == 2);
        let arg: *mut sys::moreram_tier = if kind == 2 {
            BAD_PTRS[self.rng.below(3) as usize] as *mut _
        } else {
            &mut req
        };
        let r = ioctl(fd, sys::MORERAM_IOC_TIER, arg);
        if !self.ctx.judge(Op::Tier, code_of(&r), exp.codes()) || r.is_err() {
            return;
        }
        let f = &self.m.files[fi];
        if f.crowded {
            return;
        }
        self.ctx.checked(Dim::Fields);
        let n = f.handles.len() as u32;
        let vram: u64 = f
            .handles
            .iter()
            .filter(|h| h.vram)
            .map(|h| h.npages * PAGE)
            .sum();
        let system: u64 = f
            .handles
            .iter()
            .filter(|h| !h.vram)
            .map(|h| h.npages * PAGE)
            .sum();
        let exact = req.file_allocs == n && req.file_vram == vram && req.file_system == system;
        if exact {
            return;
        }
        if f.leaked > 0 && req.file_allocs > n && req.file_allocs <= n + f.leaked {
            // The ALLOC or IMPORT that returned EFAULT kept its handle.
            let w = format!(
                "TIER: file has {} handles, {} known; {} calls failed with EFAULT",
                req.file_allocs, n, f.leaked
            );
            self.ctx.defect(d::ERROR_PATH_LEAK, Dim::Fields, &w);
            return;
        }
        self.ctx.fail(
            Dim::Fields,
            &format!(
                "TIER: file_allocs {} vram {} system {}; model {n} {vram} {system}",
                req.file_allocs, req.file_vram, req.file_system
            ),
        );
    }

    pub fn op_banks(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let kind = self.rng.weighted(&[40, 40, 5, 5, 5, 5]);
        let sizes = [88u32, 96, 104, 128, 4096];
        let mut entry_size = sizes[self.rng.below(sizes.len() as u64) as usize];
        let mut capacity = self.rng.range(1, 4) as u32;
        let mut req = sys::moreram_banks::default();
        match kind {
            0 => capacity = 0,
            2 => entry_size = if self.rng.one_in(2) { 87 } else { 4097 },
            3 => req.reserved[self.rng.below(2) as usize] = 1,
            4 => req.reserved0 = 1,
            _ => {}
        }
        let total = capacity as usize * entry_size as usize;
        let mut buf = vec![0xa5u8; total + 64];
        req.capacity = capacity;
        req.entry_size = if capacity == 0 && self.rng.one_in(2) {
            0
        } else {
            entry_size
        };
        req.banks_ptr = if kind == 5 {
            BAD_PTRS[self.rng.below(3) as usize] as u64
        } else if capacity == 0 && self.rng.one_in(2) {
            0
        } else {
            buf.as_mut_ptr() as u64
        };
        self.what(format!(
            "BANKS fd {fd} capacity {capacity} entry_size {} kind {kind}",
            req.entry_size
        ));
        let banks_now = self.bank_sizes.len();
        let mut exp = Exp::new();
        exp.when(libc::EINVAL, kind == 3 || kind == 4);
        // Entry size is checked only when something would be written.
        exp.on(
            libc::EINVAL,
            if kind == 2 {
                if banks_now > 0 {
                    Tri::Yes
                } else {
                    Tri::Maybe
                }
            } else {
                Tri::No
            },
        );
        exp.on(
            libc::EFAULT,
            if kind == 5 && capacity > 0 {
                if banks_now > 0 {
                    Tri::Yes
                } else {
                    Tri::Maybe
                }
            } else {
                Tri::No
            },
        );
        if flux(&self.epochs_seen) {
            exp.also(OK as i32);
        }
        let r = ioctl(fd, sys::MORERAM_IOC_BANKS, &mut req);
        if !self.ctx.judge(Op::Banks, code_of(&r), exp.codes()) || r.is_err() || kind == 5 {
            return;
        }
        self.ctx.checked(Dim::Fields);
        let n = (req.count.min(capacity)) as usize;
        let es = entry_size as usize;
        let known = std::mem::size_of::<sys::moreram_bank_info>();
        let mut why = None;
        if req.count as usize > MAX_BANKS {
            why = Some(format!("count {}", req.count));
        }
        let mut last = None;
        let mut snapshot = None;
        for i in 0..n {
            let e = &buf[i * es..(i + 1) * es];
            let mut info = sys::moreram_bank_info::default();
            let k = known.min(es);
            // SAFETY: copies at most the struct's size of plain bytes into it.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    e.as_ptr(),
                    std::ptr::from_mut(&mut info).cast::<u8>(),
                    k,
                )
            };
            if es > known && e[known..].iter().any(|&b| b != 0) {
                why = Some(format!("entry {i}: bytes past the struct not zeroed"));
            }
            if info.largest_free > info.free || info.pooled > info.free {
                // Each number is read on its own: under concurrent ALLOC and FREE they need not
                // agree with each other.
                snapshot = Some(format!(
                    "entry {i}: free {} largest_free {} pooled {}",
                    info.free, info.largest_free, info.pooled
                ));
            }
            if last.is_some_and(|l| info.index <= l)
                || info.free > info.size
                || info.largest_free > info.size
                || info.pooled > info.size
                || info.size == 0
                || info.reserved0 != 0
            {
                why = Some(format!(
                    "entry {i}: index {} size {} free {} largest {} pooled {}",
                    info.index, info.size, info.free, info.largest_free, info.pooled
                ));
            }
            last = Some(info.index);
        }
        if buf[n * es..].iter().any(|&b| b != 0xa5) {
            why = Some(format!("written past {n} entries of {es} bytes"));
        }
        if let Some(w) = why {
            self.ctx.fail(Dim::Fields, &format!("BANKS: {w}"));
        }
        if let Some(w) = snapshot {
            self.ctx
                .defect(d::BANKS_SNAPSHOT, Dim::Fields, &format!("BANKS: {w}"));
        }
        if !flux(&self.epochs_seen) && capacity as usize >= self.bank_sizes.len() {
            let got: Vec<(u32, u64)> = (0..n)
                .map(|i| {
                    let e = &buf[i * es..];
                    (
                        u32::from_ne_bytes(e[0..4].try_into().unwrap()),
                        u64::from_ne_bytes(e[8..16].try_into().unwrap()),
                    )
                })
                .collect();
            if got != self.bank_sizes && req.count as usize == n {
                self.ctx.fail(
                    Dim::Fields,
                    &format!("BANKS: banks {got:?}, expected {:?}", self.bank_sizes),
                );
            }
        }
    }

    // --- sharing and rights ----------------------------------------------------------------

    /// A process to name in SHARE or CONTROL: `(pid, who, alive)`.
    pub fn pick_target(&mut self) -> (i32, Who, Tri) {
        let b = board();
        let me = self.m.me;
        match self.rng.weighted(&[50, 10, 12, 5, 4, 6, 3, 2]) {
            0 => {
                // A live instance of the run, of either user.
                let top = b.next_inst.load(Relaxed);
                for _ in 0..16 {
                    let id = top.saturating_sub(self.rng.below(256) as u32).max(1);
                    if b.state(id) == ALIVE && id != me.inst {
                        let pid = b.pid_of(id);
                        if pid > 0 {
                            return (pid, Who::Inst(id), Tri::Yes);
                        }
                    }
                }
                (me.pid, Who::Inst(me.inst), Tri::Yes)
            }
            1 => (me.pid, Who::Inst(me.inst), Tri::Yes),
            2 => {
                // A process that is gone: its number may be free, or taken again.
                let top = b.next_inst.load(Relaxed);
                for _ in 0..16 {
                    let id = top.saturating_sub(self.rng.below(1024) as u32).max(1);
                    if b.state(id) == DEAD {
                        let pid = b.inst[id as usize % crate::board::MAX_INST]
                            .pid
                            .load(Relaxed);
                        if pid > 0 {
                            return (pid, Who::Pid(pid), Tri::Maybe);
                        }
                    }
                }
                (NO_PID, Who::Pid(NO_PID), Tri::No)
            }
            3 => (1, Who::Pid(1), Tri::Yes),
            4 => {
                let s = b.supervisor_pid.load(Relaxed);
                (s, Who::Pid(s), Tri::Yes)
            }
            5 => (NO_PID, Who::Pid(NO_PID), Tri::No),
            6 => (0, Who::Nobody, Tri::No),
            _ => (-1 - self.rng.below(5) as i32, Who::Nobody, Tri::No),
        }
    }

    pub fn op_share(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let me = self.m.me;
        let kind = self.rng.weighted(&[85, 4, 4, 3, 2, 2]);
        let hm = if kind == 1 {
            None
        } else {
            let mine = self.rng.pct(90);
            self.pick_handle(fi, mine)
        };
        let Some(hm) = hm.or_else(|| (kind == 1).then(|| self.fake_handle(fi))) else {
            return;
        };
        let named = self.rng.pct(30);
        let (pid, who, alive) = if named {
            self.pick_target()
        } else {
            (0, Who::Nobody, Tri::No)
        };
        let mut req = sys::moreram_share {
            handle: hm.h,
            flags: if named { sys::MORERAM_SHARE_NAMED } else { 0 },
            pid,
            ..Default::default()
        };
        match kind {
            2 => req.flags |= 2,
            3 => {
                // A pid without MORERAM_SHARE_NAMED.
                req.flags = 0;
                if req.pid == 0 {
                    req.pid = 7;
                }
            }
            4 => req.token = 1,
            5 => req.reserved[0] = 1,
            _ => {}
        }
        self.what(format!(
            "SHARE fd {fd} handle {} flags {:#x} pid {} kind {kind}",
            req.handle, req.flags, req.pid
        ));
        let mut exp = Exp::new();
        exp.when(libc::EINVAL, (2..=5).contains(&kind));
        if named && kind != 3 {
            exp.on(libc::ESRCH, alive.not());
        }
        let known = kind != 1;
        let mut locked = None;
        if !known {
            exp.when(libc::ENOENT, true);
            if self.m.files[fi].leaked > 0 || self.m.files[fi].crowded {
                exp.also(OK as i32).also(libc::EPERM).also(libc::EACCES);
            }
        } else {
            match view_in(&mut self.m.privs, hm.a) {
                None => return,
                Some(v) => {
                    exp.on(libc::EACCES, may_read(v.meta(), v.pages(), &me).not());
                    let mut own = Tri::No;
                    for p in v.pages() {
                        own = own.or(owns(p, &me));
                    }
                    exp.on(libc::EPERM, own.not());
                    if let crate::model::View::Shared(l) = v {
                        locked = Some(l);
                    }
                }
            }
        }
        let r = ioctl(fd, sys::MORERAM_IOC_SHARE, &mut req);
        let code = code_of(&r);
        let mut allowed = exp.codes();
        if named && kind != 3 && req.pid <= 0 {
            // A named pid of 0 or less is EINVAL (userspace-api.rst).
            allowed.add(libc::EINVAL as usize);
        }
        if code == libc::ESRCH as usize {
            if let Who::Inst(i) = who {
                if board().state(i) != ALIVE {
                    allowed.add(code);
                }
            }
        }
        if !self.ctx.judge(Op::Share, code, allowed) || r.is_err() || !known {
            return;
        }
        self.ctx.checked(Dim::Fields);
        if req.token == 0 {
            self.ctx.fail(Dim::Fields, "SHARE returned token 0");
        }
        let named_who = if named { who } else { Who::Nobody };
        match locked {
            Some(mut l) => {
                l.meta.token = req.token;
                l.meta.token_live = 1;
                l.meta.token_sharer = self.m.files[fi].owner_inst;
                l.meta.token_euid = me.euid;
                l.meta.token_named = named_who.encode();
                if named {
                    l.meta.add_reader(named_who);
                }
            }
            None => {
                if let Some(p) = self.m.privs.get_mut(&hm.a.uid) {
                    if named {
                        p.meta.add_reader(named_who);
                    }
                }
            }
        }
        let file = self.m.files[fi].id;
        self.tokens.push(MyToken {
            file,
            handle: hm.h,
            a: hm.a,
            token: req.token,
        });
    }

    /// A handle number the file does not have, as a `HandleM` for requests that must fail.
    fn fake_handle(&mut self, fi: usize) -> HandleM {
        HandleM {
            h: self.dead_handle(fi),
            a: ARef { uid: 0, slot: None },
            holder: 0,
            npages: 1,
            offset: 0,
            vram: false,
            bank: 0,
            flags: 0,
            opaque: false,
        }
    }

    pub fn op_import(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let me = self.m.me;
        let b = board();
        let kind = self.rng.weighted(&[75, 8, 6, 3, 4, 4]);
        // A live token from the board, under its entry's lock.
        let mut found = None;
        if kind == 0 {
            for _ in 0..24 {
                let slot = self.rng.below(crate::board::MAX_ENTRIES as u64) as usize;
                let l = b.entries[slot].lock();
                if l.meta.uid != 0 && l.meta.token != 0 {
                    found = Some((slot, l));
                    break;
                }
            }
        }
        let token = match (&found, kind) {
            (Some((_, l)), _) => l.meta.token,
            (None, 1) => {
                b.old_tokens[self.rng.below(crate::board::OLD_TOKENS as u64) as usize].load(Relaxed)
            }
            (None, 2) => self.rng.u64(),
            (None, 3) => 0,
            (None, 0) => return,
            _ => self.rng.u64(),
        };
        let mut req = sys::moreram_import {
            token,
            ..Default::default()
        };
        if kind == 4 {
            match self.rng.below(3) {
                0 => req.handle = 1,
                1 => req.size = PAGE,
                _ => req.reserved[1] = 1,
            }
        }
        let ptr_kind = if kind == 5 { 1 + self.rng.below(2) } else { 0 };
        self.what(format!(
            "IMPORT fd {fd} token {token:#x} kind {kind} ptr {ptr_kind}"
        ));
        let mut exp = Exp::new();
        let mut fields = None;
        if ptr_kind == 1 {
            exp.when(libc::EFAULT, true);
        } else if kind == 4 {
            exp.when(libc::EINVAL, true);
        } else if let Some((_, l)) = &found {
            let m = &l.meta;
            let sharer = holds_sharer(m);
            let live = if m.token_live == 1 {
                sharer
            } else if m.token_live == 2 {
                Tri::Maybe
            } else {
                Tri::No
            };
            exp.on(libc::ENOENT, live.not());
            let allowed = match Who::decode(m.token_named) {
                Who::Nobody => Tri::of(me.admin || me.euid == m.token_euid),
                w => is_me(w, &me),
            };
            exp.on(libc::EACCES, allowed.not());
            fields = Some((m.npages as u64, m.vram, m.bank, m.offset));
            if ptr_kind == 2 && !exp.must_fail() {
                exp.when(libc::EFAULT, true);
            }
        } else {
            // A token nobody has: an old one, a random one, or 0. An old one can only be live
            // again by chance of 2^-64.
            exp.when(libc::ENOENT, true);
        }
        let slot_uid = found.as_ref().map(|(s, l)| (*s, l.meta.uid));
        let arg: *mut sys::moreram_import = match ptr_kind {
            1 => BAD_PTRS[self.rng.below(3) as usize] as *mut _,
            2 => self.ro_arg(&req),
            _ => &mut req,
        };
        let r = ioctl(fd, sys::MORERAM_IOC_IMPORT, arg);
        let code = code_of(&r);
        if ptr_kind == 2 && code == libc::EFAULT as usize {
            self.m.files[fi].leaked += 1;
        }
        if !exp.codes().has(code) {
            if let Some((_, l)) = &found {
                let m = &l.meta;
                let st = board().state(m.token_sharer);
                self.ctx.what.push_str(&format!(
                    " [token live {} sharer {} state {st} lingers {} named {:?} euid {} creator {} npages {}]",
                    m.token_live,
                    m.token_sharer,
                    board().lingers(m.token_sharer),
                    Who::decode(m.token_named),
                    m.token_euid,
                    m.creator,
                    m.npages
                ));
            }
        }
        self.ctx.judge(Op::Import, code, exp.codes());
        if r.is_err() || ptr_kind != 0 {
            return;
        }
        let (Some((npages, vram, bank, offset)), Some((slot, uid))) = (fields, slot_uid) else {
            // A token the model thought dead named an allocation: counted, not modelled.
            let uid = board().next_uid.fetch_add(1, Relaxed);
            self.m.privs.insert(
                uid,
                Priv {
                    meta: Default::default(),
                    pages: Vec::new(),
                },
            );
            self.note_handle(fi);
            let f = &mut self.m.files[fi];
            f.max_handle = f.max_handle.max(req.handle);
            f.handles.push(HandleM {
                h: req.handle,
                a: ARef { uid, slot: None },
                holder: me.inst,
                npages: req.size / PAGE,
                offset: req.mmap_offset,
                vram: req.tier == sys::MORERAM_TIER_VRAM,
                bank: req.bank,
                flags: 0,
                opaque: true,
            });
            return;
        };
        self.ctx.checked(Dim::Fields);
        let f = &self.m.files[fi];
        let want_tier = if vram != 0 {
            sys::MORERAM_TIER_VRAM
        } else {
            sys::MORERAM_TIER_SYSTEM
        };
        let want_bank = if vram != 0 {
            bank
        } else {
            sys::MORERAM_NO_BANK
        };
        if req.size != npages * PAGE
            || req.tier != want_tier
            || req.bank != want_bank
            || req.mmap_offset != offset
            || req.handle <= f.max_handle
            || req.token != token
        {
            self.ctx.fail(
                Dim::Fields,
                &format!(
                    "IMPORT: size {:#x} tier {} bank {} offset {:#x} handle {} (max before {}); \
                     model size {:#x} tier {want_tier} bank {want_bank} offset {offset:#x}",
                    req.size,
                    req.tier,
                    req.bank,
                    req.mmap_offset,
                    req.handle,
                    f.max_handle,
                    npages * PAGE
                ),
            );
        }
        if let Some((_, mut l)) = found {
            l.meta.add_holder(me.inst);
            l.meta.refs += 1;
            let uid = l.meta.uid;
            l.hist.note(
                uid,
                &format!(
                    "inst {} #{} {} [handle {}]",
                    me.inst, self.ctx.op_index, self.ctx.what, req.handle
                ),
            );
        }
        let a = ARef {
            uid,
            slot: Some(slot),
        };
        self.note_handle(fi);
        let f = &mut self.m.files[fi];
        f.max_handle = f.max_handle.max(req.handle);
        f.handles.push(HandleM {
            h: req.handle,
            a,
            holder: me.inst,
            npages,
            offset,
            vram: vram != 0,
            bank,
            flags: crate::model::FLAGS_UNKNOWN,
            opaque: false,
        });
        // Our extra reference was taken above; a sibling in the model already had one.
        if self
            .m
            .files
            .iter()
            .flat_map(|f| f.handles.iter())
            .filter(|h| h.a == a)
            .count()
            > 1
            || self.m.maps.iter().any(|m| m.a == a)
        {
            board().entry_unref(slot, uid);
        }
    }

    pub fn op_control(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let me = self.m.me;
        let mine = self.rng.pct(85);
        let Some(hm) = self.pick_handle(fi, mine) else {
            return;
        };
        let n = hm.npages;
        let kind = self.rng.weighted(&[88, 3, 3, 3, 3]);
        let cmd = match self.rng.weighted(&[40, 35, 25]) {
            0 => sys::MORERAM_CTL_GRANT_WRITE,
            1 => sys::MORERAM_CTL_REVOKE_WRITE,
            _ => sys::MORERAM_CTL_GIVE,
        };
        let start = self.rng.below(n);
        let len = self.rng.range(1, n - start);
        let (mut pid, mut who, mut alive) = self.pick_target();
        if cmd == sys::MORERAM_CTL_REVOKE_WRITE && self.rng.pct(25) {
            (pid, who, alive) = (0, Who::Nobody, Tri::Yes);
        }
        let mut req = sys::moreram_control {
            handle: hm.h,
            cmd,
            offset: start * PAGE,
            length: len * PAGE,
            pid,
            ..Default::default()
        };
        match kind {
            1 => req.cmd = [0, 4, 99, u32::MAX][self.rng.below(4) as usize],
            2 => match self.rng.below(4) {
                0 => req.length = 0,
                1 => req.offset += 1 + self.rng.below(PAGE - 1),
                2 => req.length = (n - start + 1) * PAGE,
                _ => req.offset = n * PAGE,
            },
            3 => req.reserved0 = 1,
            4 => req.reserved[1] = 1,
            _ => {}
        }
        self.what(format!(
            "CONTROL fd {fd} handle {} cmd {} offset {:#x} length {:#x} pid {} kind {kind}",
            req.handle, req.cmd, req.offset, req.length, req.pid
        ));
        let Some(mut v) = view_in(&mut self.m.privs, hm.a) else {
            return;
        };
        let mut exp = Exp::new();
        exp.when(libc::EINVAL, kind != 0);
        exp.on(libc::EACCES, may_read(v.meta(), v.pages(), &me).not());
        let (s, e) = (start as usize, (start + len) as usize);
        let pages = v.pages();
        let owner_all = pages[s..e]
            .iter()
            .fold(Tri::Yes, |t, p| t.and(owns(p, &me)));
        let revoke_all = cmd == sys::MORERAM_CTL_REVOKE_WRITE && pid == 0;
        if !revoke_all {
            exp.on(libc::ESRCH, alive.not());
        }
        let perm = match cmd {
            sys::MORERAM_CTL_REVOKE_WRITE => {
                let own_right = if is_me(who, &me) != Tri::No {
                    pages[s..e].iter().fold(Tri::Yes, |t, p| {
                        t.and(p.writers().fold(Tri::No, |x, w| x.or(is_me(w, &me))))
                    })
                } else {
                    Tri::No
                };
                owner_all.or(own_right).not()
            }
            _ => owner_all.not(),
        };
        exp.on(libc::EPERM, perm);
        // The model keeps three writers per page: a grant beyond that is not made.
        if cmd == sys::MORERAM_CTL_GRANT_WRITE
            && kind == 0
            && pages[s..e]
                .iter()
                .any(|p| p.nwriters as usize == crate::board::MAX_WRITERS)
        {
            return;
        }
        // GIVE to a process that holds no handle: what issue 10 item 4 asks to refuse.
        let consent = match who {
            Who::Inst(i) => v.meta().holds_handle(i),
            _ => Some(false),
        };
        let r = ioctl(fd, sys::MORERAM_IOC_CONTROL, &mut req);
        let code = code_of(&r);
        let mut allowed = exp.codes();
        if !revoke_all && pid <= 0 {
            // userspace-api.rst: a pid of 0 or less is EINVAL, not ESRCH (it was defect
            // new.pid-einval until documented).
            allowed.add(libc::EINVAL as usize);
        }
        if cmd == sys::MORERAM_CTL_GIVE && kind == 0 && consent != Some(true) {
            // Giving needs the receiver's consent: a handle to the allocation (issue 10 item 4).
            allowed.add(libc::EACCES as usize);
        }
        if code == libc::ESRCH as usize {
            if let Who::Inst(i) = who {
                if board().state(i) != ALIVE {
                    allowed.add(code);
                }
            }
        }
        if !self.ctx.judge(Op::Control, code, allowed) || r.is_err() || kind != 0 {
            return;
        }
        if cmd == sys::MORERAM_CTL_GIVE && consent == Some(false) && who != Who::Inst(me.inst) {
            let w = format!("GIVE of pages to pid {pid}, which holds no handle");
            self.ctx.defect(d::GIVE_ANYONE, Dim::Errno, &w);
        }
        // The kernel changed the rights; so does the model.
        let target = match who {
            Who::Inst(i) if board().state(i) == ALIVE => Who::Inst(i),
            Who::Inst(_) => Who::Pid(pid),
            w => w,
        };
        let (meta, pages) = v.split();
        match cmd {
            sys::MORERAM_CTL_GRANT_WRITE => {
                for p in &mut pages[s..e] {
                    let owner = p.owner();
                    if owner != target && !same_process(owner, target) {
                        p.add_writer(target);
                    }
                }
                meta.add_reader(target);
            }
            sys::MORERAM_CTL_REVOKE_WRITE => {
                for p in &mut pages[s..e] {
                    if pid == 0 {
                        p.clear_writers();
                    } else {
                        p.remove_writer(target);
                        if let Who::Inst(i) = target {
                            p.remove_writer(Who::Pid(board().pid_of(i)));
                        }
                    }
                }
                meta.race_flag += 1;
            }
            _ => {
                for p in &mut pages[s..e] {
                    p.owner = target.encode();
                    p.clear_writers();
                }
                meta.add_reader(target);
                meta.race_flag += 1;
            }
        }
        v.note(&format!(
            "inst {} #{} {} [target {target:?}]",
            me.inst, self.ctx.op_index, self.ctx.what
        ));
        let _ = alive;
    }

    pub fn op_rights(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let me = self.m.me;
        let mine = self.rng.pct(70);
        let Some(hm) = self.pick_handle(fi, mine) else {
            return;
        };
        let n = hm.npages;
        let kind = self.rng.weighted(&[85, 5, 4, 3, 3]);
        let start = self.rng.below(n);
        let len = self.rng.range(1, n - start);
        let mut writers = [0i32; 4];
        let mut readers = [0i32; 8];
        let mut req = sys::moreram_rights {
            handle: hm.h,
            offset: start * PAGE,
            length: len * PAGE,
            writers_cap: self.rng.below(5) as u32,
            writers_ptr: writers.as_mut_ptr() as u64,
            readers_cap: self.rng.below(9) as u32,
            readers_ptr: readers.as_mut_ptr() as u64,
            ..Default::default()
        };
        match kind {
            1 => match self.rng.below(3) {
                0 => req.length = 0,
                1 => req.offset = n * PAGE,
                _ => req.offset += 8,
            },
            2 => match self.rng.below(3) {
                0 => req.owner = 1,
                1 => req.nwriters = 1,
                _ => req.reserved[0] = 1,
            },
            3 => {
                req.writers_ptr = BAD_PTRS[self.rng.below(3) as usize] as u64;
                req.writers_cap = 4;
            }
            4 => {
                req.readers_ptr = BAD_PTRS[self.rng.below(3) as usize] as u64;
                req.readers_cap = 8;
            }
            _ => {}
        }
        self.what(format!(
            "RIGHTS fd {fd} handle {} offset {:#x} length {:#x} kind {kind}",
            req.handle, req.offset, req.length
        ));
        let Some(v) = view_in(&mut self.m.privs, hm.a) else {
            return;
        };
        let (s, e) = (start as usize, (start + len) as usize);
        let pages = v.pages();
        let mut exp = Exp::new();
        exp.when(libc::EINVAL, kind == 1 || kind == 2);
        exp.on(libc::EACCES, may_read(v.meta(), pages, &me).not());
        let first = pages[s];
        // Writers of the first page, and readers: EFAULT only if there are any to write. Writers
        // that have exited are left out of the report: only a live one surely has to be written.
        let live_writer = first
            .writers()
            .any(|w| matches!(w, Who::Inst(i) if board().state(i) == ALIVE));
        let nw = if crate::model::holds(first.owner()) == Tri::No {
            Tri::No
        } else if crate::model::holds(first.owner()) == Tri::Yes && live_writer {
            Tri::Yes
        } else {
            Tri::of(first.nwriters > 0).weaken()
        };
        if kind == 3 {
            exp.on(libc::EFAULT, nw);
        }
        if kind == 4 {
            // Readers that have exited are left out of the report: only a live one surely
            // has to be written.
            let live_reader = v
                .meta()
                .readers()
                .any(|w| matches!(w, Who::Inst(i) if board().state(i) == ALIVE));
            exp.on(
                libc::EFAULT,
                if live_reader { Tri::Yes } else { Tri::Maybe },
            );
        }
        let r = ioctl(fd, sys::MORERAM_IOC_RIGHTS, &mut req);
        if !self.ctx.judge(Op::Rights, code_of(&r), exp.codes()) || r.is_err() || kind != 0 {
            return;
        }
        // What the caller holds, without CAP_SYS_ADMIN.
        let plain = Me { admin: false, ..me };
        let read = may_read(v.meta(), pages, &plain);
        let write = pages[s..e]
            .iter()
            .fold(Tri::Yes, |t, p| t.and(may_write(p, &me)));
        let own = pages[s..e]
            .iter()
            .fold(Tri::Yes, |t, p| t.and(owns(p, &me)));
        let bit = |b: u32| req.caller & b != 0;
        let mut why = Vec::new();
        let read_all = read.or(write);
        if read_all != Tri::Maybe && bit(sys::MORERAM_RIGHT_READ) != (read_all == Tri::Yes) {
            why.push(format!(
                "READ {} model {read_all:?}",
                bit(sys::MORERAM_RIGHT_READ)
            ));
        }
        if write != Tri::Maybe && bit(sys::MORERAM_RIGHT_WRITE) != (write == Tri::Yes) {
            why.push(format!(
                "WRITE {} model {write:?}",
                bit(sys::MORERAM_RIGHT_WRITE)
            ));
        }
        if own != Tri::Maybe && bit(sys::MORERAM_RIGHT_OWNER) != (own == Tri::Yes) {
            why.push(format!(
                "OWNER {} model {own:?}",
                bit(sys::MORERAM_RIGHT_OWNER)
            ));
        }
        // The owner of the first page.
        let owner_ok = match first.owner() {
            Who::Nobody => Some(req.owner == 0),
            Who::Inst(i) => match board().state(i) {
                ALIVE => Some(req.owner == board().pid_of(i)),
                // A dead process whose handle lives on (a child's, in its parent's file) still
                // owns its pages, and is reported as 0 (its number may be another's by now);
                // one that is only exiting may still be reported by its number.
                _ => Some(req.owner == 0 || req.owner == board().pid_of(i)),
            },
            Who::Pid(p) => Some(req.owner == 0 || req.owner == p),
        };
        if owner_ok == Some(false) {
            why.push(format!("owner {} model {:?}", req.owner, first.owner()));
        }
        // Writers of the first page, when all are known live instances and the owner holds
        // (writers that have exited are left out of the report).
        if crate::model::holds(first.owner()) == Tri::Yes
            && first
                .writers()
                .all(|w| matches!(w, Who::Inst(i) if board().state(i) == ALIVE))
            && req.nwriters != first.nwriters
        {
            why.push(format!(
                "nwriters {} model {}",
                req.nwriters, first.nwriters
            ));
        }
        // Pages that surely differ must be reported mixed.
        let certain = |p: &crate::board::PageRec| {
            matches!(p.owner(), Who::Inst(_)) && p.writers().all(|w| matches!(w, Who::Inst(_)))
        };
        let set = |p: &crate::board::PageRec| {
            let mut v: Vec<u64> = p.writers[..p.nwriters as usize].to_vec();
            v.sort_unstable();
            (p.owner, v)
        };
        let differ =
            pages[s..e].iter().all(certain) && pages[s..e].iter().any(|p| set(p) != set(&first));
        if differ
            && req.flags & sys::MORERAM_RIGHTS_MIXED == 0
            && pages[s..e]
                .iter()
                .all(|p| crate::model::holds(p.owner()) == Tri::Yes)
        {
            why.push("pages differ but not MIXED".into());
            why.push(format!("model pages: {:?}", &pages[s..e]));
        }
        let wn = (req.nwriters.min(req.writers_cap)) as usize;
        if writers[wn..].iter().any(|&x| x != 0) || writers[..wn].iter().any(|&x| x <= 0) {
            why.push(format!(
                "writers array {writers:?} for {} writers",
                req.nwriters
            ));
        }
        self.ctx.checked(Dim::Fields);
        if !why.is_empty() {
            // The whole story, which a failure's line has no room for.
            eprintln!(
                "moreram-fuzz: instance {} op #{} RIGHTS failed: {}; history of the allocation:\n  {}",
                me.inst,
                self.ctx.op_index,
                why.join(", "),
                v.history().join("\n  ")
            );
            self.ctx
                .fail(Dim::Fields, &format!("RIGHTS: {}", why.join(", ")));
        }
    }

    pub fn op_procs(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let me = self.m.me;
        let kind = self.rng.weighted(&[40, 40, 5, 5, 5, 5]);
        let es = [40u32, 48, 64, 256][self.rng.below(4) as usize];
        let cap = if kind == 0 { 0 } else { 64 };
        let mut buf = vec![0x5au8; cap * es as usize + 16];
        let mut req = sys::moreram_procs {
            capacity: cap as u32,
            entry_size: if kind == 2 { 39 } else { es },
            procs_ptr: if kind == 5 {
                BAD_PTRS[self.rng.below(3) as usize] as u64
            } else {
                buf.as_mut_ptr() as u64
            },
            ..Default::default()
        };
        match kind {
            3 => req.count = 1,
            4 => req.reserved[1] = 1,
            _ => {}
        }
        self.what(format!(
            "PROCS fd {fd} capacity {cap} entry_size {} kind {kind}",
            req.entry_size
        ));
        // Pages this process surely owns, by tier.
        let (mut vram, mut system) = (0u64, 0u64);
        let mut owns_some = false;
        let mut views: Vec<ARef> = self
            .m
            .files
            .iter()
            .flat_map(|f| f.handles.iter().map(|h| h.a))
            .collect();
        views.sort_by_key(|a| a.uid);
        views.dedup();
        for a in views {
            if let Some(v) = view_in(&mut self.m.privs, a) {
                let n = v
                    .pages()
                    .iter()
                    .filter(|p| owns(p, &me) == Tri::Yes)
                    .count() as u64;
                if v.meta().vram != 0 {
                    vram += n * PAGE;
                } else {
                    system += n * PAGE;
                }
                owns_some |= n > 0;
            }
        }
        let mut exp = Exp::new();
        exp.when(libc::EINVAL, kind == 3 || kind == 4);
        exp.on(
            libc::EINVAL,
            if kind == 2 {
                if owns_some {
                    Tri::Yes
                } else {
                    Tri::Maybe
                }
            } else {
                Tri::No
            },
        );
        exp.on(
            libc::EFAULT,
            if kind == 5 {
                if owns_some {
                    Tri::Yes
                } else {
                    Tri::Maybe
                }
            } else {
                Tri::No
            },
        );
        let r = ioctl(fd, sys::MORERAM_IOC_PROCS, &mut req);
        if !self.ctx.judge(Op::Procs, code_of(&r), exp.codes())
            || r.is_err()
            || kind == 0
            || kind == 5
        {
            return;
        }
        self.ctx.checked(Dim::Fields);
        let n = (req.count as usize).min(cap);
        let mut last = 0;
        let mut mine = None;
        let mut why = None;
        for i in 0..n {
            let e = &buf[i * es as usize..];
            let pid = i32::from_ne_bytes(e[0..4].try_into().unwrap());
            let v = u64::from_ne_bytes(e[8..16].try_into().unwrap());
            let s = u64::from_ne_bytes(e[16..24].try_into().unwrap());
            if pid <= last {
                why = Some(format!("entry {i}: pid {pid} after {last}"));
            }
            if e[40..es as usize].iter().any(|&b| b != 0) {
                why = Some(format!("entry {i}: bytes past the struct not zeroed"));
            }
            last = pid;
            if pid == me.pid {
                mine = Some((v, s));
            }
        }
        if buf[n * es as usize..].iter().any(|&b| b != 0x5a) {
            why = Some("written past the entries".into());
        }
        if owns_some && n == req.count as usize {
            match mine {
                None => {
                    why = Some(format!(
                        "this process (pid {}) owns pages but is not listed",
                        me.pid
                    ))
                }
                Some((v, s)) if v < vram || s < system => {
                    why = Some(format!(
                        "owns at least {vram} VRAM, {system} system; PROCS says {v}, {s}"
                    ))
                }
                _ => {}
            }
        }
        if let Some(w) = why {
            self.ctx.fail(Dim::Fields, &format!("PROCS: {w}"));
        }
    }

    // --- pools -----------------------------------------------------------------------------

    pub fn op_reserve(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let kind = self.rng.weighted(&[45, 35, 4, 4, 4, 4, 4]);
        let mut req = sys::moreram_reserve::default();
        match kind {
            0 => {
                req.bank = self.rng.below(2) as u32;
                req.size = self.rng.range(1, 512) * PAGE;
            }
            1 => {
                req.flags = sys::MORERAM_RESERVE_SYSTEM;
                req.size = self.rng.range(1, 64) * PAGE;
            }
            2 => {
                req.bank = 2 + self.rng.below(6) as u32;
                req.size = PAGE;
            }
            3 => {
                req.size = [0, 1, PAGE + 3, MAX_ALLOC + PAGE][self.rng.below(4) as usize];
                req.flags = if self.rng.one_in(2) {
                    sys::MORERAM_RESERVE_SYSTEM
                } else {
                    0
                };
            }
            4 => {
                req.size = PAGE;
                req.flags = 2 << self.rng.below(8);
            }
            5 => {
                req.size = PAGE;
                req.flags = sys::MORERAM_RESERVE_SYSTEM;
                req.bank = 1;
            }
            _ => {
                req.size = PAGE;
                req.reserved[0] = 1;
            }
        }
        if self.strict_inputs && kind == 1 && self.rng.one_in(20) {
            // What issue 10 items 6 and 7 are about: more than RAM must be ENOMEM.
            req.size = MAX_ALLOC;
        }
        self.what(format!(
            "RESERVE fd {fd} size {:#x} bank {} flags {:#x} kind {kind}",
            req.size, req.bank, req.flags
        ));
        let mut exp = Exp::new();
        let moving = flux(&self.epochs_seen);
        match kind {
            0 => {
                exp.also(libc::ENOSPC);
                match self.bank_size(req.bank) {
                    Some(_) => {}
                    None => {
                        exp.when(libc::ENODEV, !moving);
                    }
                }
                if moving {
                    exp.also(libc::ENODEV);
                }
            }
            1 => {
                exp.also(libc::ENOMEM);
                exp.when(libc::ENOMEM, req.size > self.total_ram);
            }
            2 => {
                exp.when(libc::ENODEV, true);
            }
            _ => {
                exp.when(libc::EINVAL, true);
            }
        }
        let e0 = epochs();
        let r = ioctl(fd, sys::MORERAM_IOC_RESERVE, &mut req);
        if kind == 0 && epochs() != e0 {
            // An unbind started during the call: the bank it found may be gone (ENODEV).
            exp.also(libc::ENODEV);
        }
        self.ctx.judge(Op::Reserve, code_of(&r), exp.codes());
    }

    pub fn op_scavenge(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let kind = self.rng.weighted(&[90, 6, 4]);
        let mut req = sys::moreram_scavenge::default();
        if kind == 1 {
            req.vram = 1;
        }
        self.what(format!("SCAVENGE fd {fd} kind {kind}"));
        let mut exp = Exp::new();
        exp.when(libc::EINVAL, kind == 1);
        exp.when(libc::EFAULT, kind == 2);
        let arg: *mut sys::moreram_scavenge = if kind == 2 {
            BAD_PTRS[self.rng.below(3) as usize] as *mut _
        } else {
            &mut req
        };
        let r = ioctl(fd, sys::MORERAM_IOC_SCAVENGE, arg);
        if self.ctx.judge(Op::Scavenge, code_of(&r), exp.codes()) && r.is_ok() && kind == 0 {
            self.ctx.checked(Dim::Fields);
            if req.vram % PAGE != 0 || req.system % PAGE != 0 {
                self.ctx.fail(
                    Dim::Fields,
                    &format!("SCAVENGE returned {} / {} bytes", req.vram, req.system),
                );
            }
        }
    }

    pub fn op_notify(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let kind = self.rng.weighted(&[85, 6, 5, 4]);
        let sigs = crate::signals::NOTIFY_SIGNALS;
        let mut req = sys::moreram_notify {
            signal: match kind {
                1 => [65, 100, u32::MAX][self.rng.below(3) as usize],
                _ => {
                    if self.rng.one_in(4) {
                        0
                    } else {
                        sigs[self.rng.below(sigs.len() as u64) as usize] as u32
                    }
                }
            },
            ..Default::default()
        };
        if kind == 2 {
            req.reserved0 = 1;
        }
        self.what(format!("NOTIFY fd {fd} signal {} kind {kind}", req.signal));
        let mut exp = Exp::new();
        exp.when(libc::EINVAL, kind == 1 || kind == 2);
        exp.when(libc::EFAULT, kind == 3);
        if self.m.files[fi].foreign && req.signal != 0 {
            // A file another process opened: the caller may not be allowed to signal the
            // opener (another user's, issue 10 item 3), or the opener may be gone.
            exp.also(libc::EPERM);
            exp.also(libc::ESRCH);
        }
        let arg: *mut sys::moreram_notify = if kind == 3 {
            BAD_PTRS[self.rng.below(3) as usize] as *mut _
        } else {
            &mut req
        };
        let r = ioctl(fd, sys::MORERAM_IOC_NOTIFY, arg);
        self.ctx.judge(Op::Notify, code_of(&r), exp.codes());
    }

    /// poll and read of scavenge events.
    pub fn op_events(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLPRI,
            revents: 0,
        };
        self.what(format!("poll fd {fd}"));
        // SAFETY: one pollfd, no timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        let code = if n < 0 { errno() as usize } else { 0 };
        self.ctx.judge(Op::Poll, code, Codes::of(&[OK]));
        let ready = n > 0 && pfd.revents & libc::POLLIN != 0;
        if n > 0 && (pfd.revents & libc::POLLIN != 0) != (pfd.revents & libc::POLLPRI != 0) {
            self.ctx
                .fail(Dim::Fields, &format!("poll revents {:#x}", pfd.revents));
        }
        let kind = self.rng.weighted(&[80, 10, 10]);
        let mut ev = sys::moreram_event::default();
        let (buf, len) = match kind {
            1 => (std::ptr::from_mut(&mut ev).cast::<libc::c_void>(), 39),
            2 => (
                BAD_PTRS[1 + self.rng.below(2) as usize] as *mut libc::c_void,
                40,
            ),
            _ => (
                std::ptr::from_mut(&mut ev).cast::<libc::c_void>(),
                40 + self.rng.below(3) as usize * 8,
            ),
        };
        let crowded = self.m.files[fi].crowded;
        let nonblock = self.m.files[fi].nonblock;
        if !ready && !nonblock {
            return;
        }
        self.what(format!("read fd {fd} len {len} kind {kind} ready {ready}"));
        let mut exp = Exp::new();
        exp.when(libc::EINVAL, kind == 1);
        if kind != 1 {
            // Not ready at the poll is no promise: a request for this process may come to
            // every file it opened (the chaos thread's too) between the poll and the read.
            exp.on(
                libc::EAGAIN,
                if ready && !crowded {
                    Tri::No
                } else {
                    Tri::Maybe
                },
            );
            if kind == 2 {
                exp.on(libc::EFAULT, if ready { Tri::Yes } else { Tri::Maybe });
            }
        }
        // SAFETY: `buf` is our event or a bad pointer the kernel must refuse.
        let r = unsafe { libc::read(fd, buf, len) };
        let code = if r < 0 { errno() as usize } else { 0 };
        if !self.ctx.judge(Op::Read, code, exp.codes()) || r < 0 || kind != 0 {
            return;
        }
        self.ctx.checked(Dim::Fields);
        if r != 40
            || ev.type_ != sys::MORERAM_EVENT_SCAVENGE
            || ev.bank as usize >= MAX_BANKS
            || ev.bytes == 0
            || ev.bytes % PAGE != 0
            || ev.deadline_ns == 0
            || ev.reserved != [0; 2]
        {
            self.ctx.fail(
                Dim::Fields,
                &format!(
                    "read returned {r} bytes: type {} bank {} bytes {} deadline {}",
                    ev.type_, ev.bank, ev.bytes, ev.deadline_ns
                ),
            );
        }
    }

    /// Commands that do not exist, and bad argument pointers for the ones that do.
    pub fn op_bad_ioctl(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let cmds = [
            sys::MORERAM_IOC_BANKS,
            sys::MORERAM_IOC_ALLOC,
            sys::MORERAM_IOC_FREE,
            sys::MORERAM_IOC_QUERY,
            sys::MORERAM_IOC_TIER,
            sys::MORERAM_IOC_SHARE,
            sys::MORERAM_IOC_IMPORT,
            sys::MORERAM_IOC_CONTROL,
            sys::MORERAM_IOC_RIGHTS,
            sys::MORERAM_IOC_PROCS,
            sys::MORERAM_IOC_RESERVE,
            sys::MORERAM_IOC_SCAVENGE,
            sys::MORERAM_IOC_NOTIFY,
        ];
        let (cmd, exp) = if self.rng.one_in(2) {
            let c = match self.rng.below(4) {
                // Numbers past the last.
                0 => (0xc000_b900 | (0x0d + self.rng.below(0xf3) as u32)) | (8 << 16),
                // A known number with another size.
                1 => cmds[self.rng.below(cmds.len() as u64) as usize] ^ (8 << 16),
                // Another magic.
                2 => cmds[self.rng.below(cmds.len() as u64) as usize] ^ (1 << 8),
                _ => self.rng.u64() as u32,
            };
            (c, Codes::of(&[libc::ENOTTY as usize]))
        } else {
            let c = cmds[self.rng.below(cmds.len() as u64) as usize];
            // SCAVENGE and TIER read all-zero structs; BANKS with capacity 0 writes nothing but
            // the count: every command must copy its argument first.
            (c, Codes::of(&[libc::EFAULT as usize]))
        };
        let ptr = BAD_PTRS[self.rng.below(3) as usize];
        self.what(format!("ioctl fd {fd} cmd {cmd:#x} arg {ptr:#x}"));
        let r = ioctl(fd, cmd, ptr as *mut u8);
        self.ctx.judge(Op::BadIoctl, code_of(&r), exp);
    }

    /// `/proc/self/fdinfo` of a descriptor: the DRM usage keys.
    pub fn op_fdinfo(&mut self) {
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        self.what(format!("read /proc/self/fdinfo/{fd}"));
        let r = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"));
        let code = match &r {
            Ok(_) => OK,
            Err(e) => e.raw_os_error().unwrap_or(libc::EIO) as usize,
        };
        if !self.ctx.judge(Op::Fdinfo, code, Codes::of(&[OK])) {
            return;
        }
        let text = r.unwrap_or_default();
        self.ctx.checked(Dim::Fields);
        for key in [
            "drm-driver:\tmoreram",
            "drm-client-id:",
            "drm-total-system:",
            "moreram-pool-vram:",
        ] {
            if !text.contains(key) {
                self.ctx.fail(Dim::Fields, &format!("fdinfo lacks {key:?}"));
                return;
            }
        }
    }

    // --- hogging a bank --------------------------------------------------------------------

    /// Takes most of a bank's free VRAM for a while, so that its watermarks are crossed and
    /// pool holders get scavenge requests.
    pub fn op_hog(&mut self) {
        if self.hog.is_some() {
            return;
        }
        let Some(fi) = self.pick_file() else { return };
        let fd = self.fd_of(fi);
        let mut infos = vec![sys::moreram_bank_info::default(); 8];
        let mut b = sys::moreram_banks {
            capacity: 8,
            entry_size: std::mem::size_of::<sys::moreram_bank_info>() as u32,
            banks_ptr: infos.as_mut_ptr() as u64,
            ..Default::default()
        };
        if ioctl(fd, sys::MORERAM_IOC_BANKS, &mut b).is_err() || b.count == 0 {
            return;
        }
        let i = self.rng.below(u64::from(b.count.min(8))) as usize;
        let bank = infos[i];
        let size =
            (bank.free.saturating_sub(bank.pooled) / 100 * self.rng.range(60, 95)) & !(PAGE - 1);
        if size == 0 {
            return;
        }
        let mut req = sys::moreram_alloc {
            size,
            flags: sys::MORERAM_ALLOC_BANK,
            bank: bank.index,
            ..Default::default()
        };
        self.what(format!(
            "hog: ALLOC fd {fd} bank {} size {size:#x}",
            bank.index
        ));
        let mut exp = Exp::new();
        exp.also(libc::ENOSPC).also(libc::ENODEV).also(libc::ENOMEM);
        let r = ioctl(fd, sys::MORERAM_IOC_ALLOC, &mut req);
        if self.ctx.judge(Op::Hog, code_of(&r), exp.codes()) && r.is_ok() {
            self.note_handle(fi);
            let f = &mut self.m.files[fi];
            f.max_handle = f.max_handle.max(req.handle);
            let id = f.id;
            // Counted as a handle of the file for TIER, modelled as a private allocation.
            let uid = board().next_uid.fetch_add(1, Relaxed);
            let me = self.m.me;
            let meta = crate::board::Meta {
                creator: me.inst,
                creator_euid: me.euid,
                npages: (size / PAGE) as u32,
                vram: 1,
                bank: req.bank_used,
                offset: req.mmap_offset,
                flags: req.flags,
                ..Default::default()
            };
            self.m.privs.insert(
                uid,
                Priv {
                    meta,
                    pages: Vec::new(),
                },
            );
            // Opaque: the operations that pick handles leave it alone; TIER counts it.
            self.m.files[fi].handles.push(HandleM {
                h: req.handle,
                a: ARef { uid, slot: None },
                holder: me.inst,
                npages: size / PAGE,
                offset: req.mmap_offset,
                vram: true,
                bank: req.bank_used,
                flags: req.flags,
                opaque: true,
            });
            self.hog = Some((id, req.handle, self.rng.range(20, 200)));
        }
    }

    fn hog_release(&mut self, file: u32, handle: u32) {
        self.hog = None;
        let Some(fi) = self.m.files.iter().position(|f| f.id == file) else {
            return;
        };
        let Some(h) = self.m.files[fi]
            .handles
            .iter()
            .find(|h| h.h == handle)
            .cloned()
        else {
            return;
        };
        let Some(&fd) = self.m.files[fi].fds.first() else {
            return;
        };
        self.what(format!("hog: FREE fd {fd} handle {handle}"));
        let req = sys::moreram_handle {
            handle,
            ..Default::default()
        };
        let r = ioctl(
            fd,
            sys::MORERAM_IOC_FREE,
            std::ptr::from_ref(&req).cast_mut(),
        );
        if self.ctx.judge(Op::Hog, code_of(&r), Codes::of(&[OK])) {
            self.forget_handle(fi, &h, None);
        }
    }
}

/// Whether `a` and `b` name the same process (an instance and its pid).
fn same_process(a: Who, b: Who) -> bool {
    match (a, b) {
        (Who::Inst(i), Who::Pid(p)) | (Who::Pid(p), Who::Inst(i)) => board().pid_of(i) == p,
        _ => a == b,
    }
}

/// Whether the sharer of the entry's token still holds the handle it was made from.
fn holds_sharer(m: &crate::board::Meta) -> Tri {
    crate::model::holds(Who::Inst(m.token_sharer))
}

impl Tri {
    /// The negation: a condition that fails when `self` does not hold.
    pub fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Maybe => Tri::Maybe,
        }
    }
}
