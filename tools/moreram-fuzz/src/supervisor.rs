//! The supervisor: root, the parent of every worker. It records where the tier starts, makes
//! the workers and restarts them, injects faults (fail_alloc, memory pressure and the
//! shrinker, unbind and rebind of a bank's device, rmmod attempts), and at the end checks that
//! everything came back and prints the report.

use crate::{
    board::{board, Board, Who, ALIVE, CODE_BUS, CODE_SEGV, DEAD, MAX_INST, NCODES},
    engine::{ioctl, PAGE},
    oracle::{code_name, d, Ctx, Dim, Op, DEFECTS, DIM_NAMES, NDIMS, OP_NAMES},
    worker::{worker_main, RootAlloc},
    Config, BOARD_FD,
};
use moreram::{sys, Moreram};
use std::{
    collections::HashMap,
    fs,
    io::Write,
    os::fd::AsRawFd,
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

const DRV: &str = "/sys/bus/pci/drivers/moreram";
const FAIL: &str = "/sys/kernel/debug/moreram/fail_alloc";
const ALT_NODE: &str = "/tmp/moreram-fuzz-node";

/// Where the tier stands: what must come back after the run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    banks: Vec<(u32, u64, u64, u64)>,
    system_used: u64,
    owners: u32,
}

fn snapshot(mr: &Moreram) -> Option<Snapshot> {
    let t = mr.tier().ok()?;
    let banks = mr
        .banks()
        .ok()?
        .iter()
        .map(|b| (b.index, b.size, b.free, b.pooled))
        .collect();
    let mut req = sys::moreram_procs::default();
    // SAFETY: capacity 0: only the count is written.
    unsafe { sys::procs(mr.as_fd_raw(), &mut req).ok()? };
    Some(Snapshot {
        banks,
        system_used: t.system_used,
        owners: req.count,
    })
}

trait RawFd {
    fn as_fd_raw(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl RawFd for Moreram {
    fn as_fd_raw(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.as_fd()
    }
}

/// Output: KTAP (one level down, as moreram-itest's) or plain.
struct Out {
    ktap: bool,
}

impl Out {
    fn line(&self, s: &str) {
        let mut o = std::io::stdout().lock();
        for l in s.lines() {
            let l: String = l.chars().take(400).collect();
            let _ = if self.ktap {
                writeln!(o, "    # {l}")
            } else {
                writeln!(o, "{l}")
            };
        }
        let _ = o.flush();
    }

    fn raw(&self, s: &str) {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "    {s}");
        let _ = o.flush();
    }
}

fn write_file(path: &str, v: &str) -> bool {
    fs::write(path, v).is_ok()
}

fn read_num(path: &str) -> Option<i64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The PCI address of a device name in the driver's directory, as BANKS reports it.
fn pci_of(b: &moreram::Bank) -> String {
    b.pci.to_string()
}

struct Worker {
    pid: i32,
    gen: u32,
}

struct Sup {
    kcov: Option<crate::kcov::Kcov>,
    cfg: Config,
    out: Out,
    ctx: Ctx,
    fd: Moreram,
    root: Option<RootAlloc>,
    deadline: Instant,
    workers: HashMap<u32, Worker>,
    spawned: u64,
    hog: Option<i32>,
    unbinds: u32,
    rebinds: u32,
    rmmods: u32,
    pressure_rounds: u32,
    /// Failures already printed.
    printed: usize,
    /// The pools were shown once, when they held more of a bank than it had free.
    dumped_pools: bool,
    /// What the kernel held at the last look at debugfs: `(files, handles, handles in the
    /// supervisor's files)`.
    held: Option<(usize, usize, usize)>,
    /// Supervisor files handed on so far (see `rotate_root`).
    rotations: u32,
}

pub fn run(cfg: &Config) -> bool {
    let out = Out { ktap: cfg.ktap };
    let (b, bfd) = Board::create(cfg.seed);
    BOARD_FD.store(bfd, Relaxed);
    b.known.store(cfg.tolerate, Relaxed);
    // SAFETY: no preconditions.
    let pid = unsafe { libc::getpid() };
    b.supervisor_pid.store(pid, Relaxed);
    let inst = b.register(pid, 0, 0, u32::MAX - 1);
    b.supervisor_inst.store(inst, Relaxed);
    crate::probe::install();
    crate::signals::install_counting();
    if cfg.ktap {
        out.raw("KTAP version 1");
        out.raw("# Subtest: fuzz");
        out.raw(&format!("1..{NDIMS}"));
    }
    out.line(&format!(
        "moreram-fuzz: seed {} ({:#x}), {} s, {} processes{}, faults {}, coverage {}; replay: moreram-fuzz --seed {} --seconds {} --procs {}{}{}",
        cfg.seed,
        cfg.seed,
        cfg.seconds,
        cfg.procs,
        if cfg.threads { " with 2 threads each" } else { "" },
        if cfg.faults { "on" } else { "off" },
        if cfg.coverage { "on" } else { "off" },
        cfg.seed,
        cfg.seconds,
        cfg.procs,
        if cfg.faults { " --faults" } else { "" },
        if cfg.threads { "" } else { " --threads off" },
    ));
    let ctx = Ctx {
        seed: cfg.seed,
        inst,
        pid,
        role: "supervisor".into(),
        ..Default::default()
    };
    let fd = match Moreram::open() {
        Ok(f) => f,
        Err(e) => {
            out.line(&format!("cannot open /dev/moreram: {e}"));
            return false;
        }
    };
    let start = snapshot(&fd);
    // A second node for the same device (what a container's /dev has): workers open it too.
    make_alt_node();
    let mut sup = Sup {
        kcov: if cfg.coverage {
            crate::kcov::Kcov::open().filter(|k| k.enable())
        } else {
            None
        },
        cfg: cfg.clone(),
        out,
        ctx,
        fd,
        root: None,
        deadline: Instant::now() + Duration::from_secs(cfg.seconds),
        workers: HashMap::new(),
        spawned: 0,
        hog: None,
        unbinds: 0,
        rebinds: 0,
        rmmods: 0,
        pressure_rounds: 0,
        printed: 0,
        dumped_pools: false,
        held: None,
        rotations: 0,
    };
    sup.root_setup();
    let old_pid_max = fs::read_to_string("/proc/sys/kernel/pid_max").ok();
    if cfg.faults {
        // Numbers come round again soon: CONTROL and SHARE name reused pids.
        write_file("/proc/sys/kernel/pid_max", "1024");
        sup.fail_alloc(true);
    }
    let t0 = Instant::now();
    sup.main_loop();
    let elapsed = t0.elapsed();
    sup.finish_workers();
    let stopped = t0.elapsed() - elapsed;
    let injected = if cfg.faults { sup.fail_alloc(false) } else { 0 };
    if let Some(v) = old_pid_max {
        write_file("/proc/sys/kernel/pid_max", v.trim());
    }
    let _ = fs::remove_file(ALT_NODE);
    sup.check_signals();
    let t1 = Instant::now();
    let end_ok = sup.accounting(start, injected);
    let accounted = t1.elapsed();
    let ok = sup.report(elapsed, injected, end_ok);
    sup.out.line(&format!(
        "moreram-fuzz: stopping took {:.1} s, the accounting {:.1} s, the report {:.1} s",
        stopped.as_secs_f64(),
        accounted.as_secs_f64(),
        (t1.elapsed() - accounted).as_secs_f64()
    ));
    ok
}

/// Files, handles and handles in files the supervisor (`pid`) opened, in debugfs `processes`.
fn held(processes: &str, pid: i32) -> (usize, usize, usize) {
    let mine = format!("opened by pid {pid}");
    let (mut files, mut handles, mut own, mut in_mine) = (0, 0, 0, false);
    for l in processes.lines() {
        if l.starts_with("file ") {
            files += 1;
            in_mine = l.ends_with(&mine);
        } else if l.starts_with("  handle ") {
            handles += 1;
            own += usize::from(in_mine);
        }
    }
    (files, handles, own)
}

fn make_alt_node() {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = fs::metadata("/dev/moreram") else {
        return;
    };
    let _ = fs::remove_file(ALT_NODE);
    let p = std::ffi::CString::new(ALT_NODE).unwrap();
    // SAFETY: makes a character device node for the same device number.
    let r = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o666, m.rdev() as libc::dev_t) };
    if r == 0 {
        // SAFETY: chmod of the node we made (mknod applies the umask).
        unsafe { libc::chmod(p.as_ptr(), 0o666) };
        std::env::set_var("MORERAM_FUZZ_ALT", ALT_NODE);
    }
}

impl Sup {
    /// The supervisor's file, inherited by every worker: an allocation in it that only root may
    /// read, and a VRAM pool so that it is asked to scavenge (and signalled, if a worker of the
    /// other user set NOTIFY on it: issue 10, item 3).
    fn root_setup(&mut self) {
        let fd = self.fd.as_fd_raw().as_raw_fd();
        // Inherited across fork; not across exec.
        let b = board();
        let mut req = sys::moreram_alloc {
            size: 2 * PAGE,
            ..Default::default()
        };
        let e0 = crate::engine::epochs();
        if ioctl(fd, sys::MORERAM_IOC_ALLOC, &mut req).is_ok() {
            if let Some((slot, uid)) = b.new_entry(0) {
                let mut e = b.entries[slot].lock();
                e.meta.creator = self.ctx.inst;
                e.meta.creator_pid = self.ctx.pid;
                e.meta.creator_euid = 0;
                e.meta.npages = 2;
                e.meta.vram = u32::from(req.tier == sys::MORERAM_TIER_VRAM);
                e.meta.bank = req.bank_used;
                // The supervisor unbinds and rebinds banks itself, between these calls: no
                // unbind is under way. Allocated after the unbinds so far (a rotated file's
                // allocation comes after some).
                let (started, done) = e0.get(req.bank_used as usize).copied().unwrap_or_default();
                e.meta.bank_epoch = started;
                e.meta.epoch_certain = u32::from(started == done);
                e.meta.offset = req.mmap_offset;
                e.meta.add_holder(self.ctx.inst);
                for p in e.pages.iter_mut().take(2) {
                    p.owner = Who::Inst(self.ctx.inst).encode();
                }
                self.root = Some(RootAlloc {
                    handle: req.handle,
                    slot,
                    uid,
                    npages: 2,
                    offset: req.mmap_offset,
                    vram: req.tier == sys::MORERAM_TIER_VRAM,
                    bank: req.bank_used,
                    holder: self.ctx.inst,
                });
            }
        }
        let _ = self.fd.reserve_vram(0, 4 * PAGE);
        let file_inst = b.register(self.ctx.pid, 0, self.ctx.inst, u32::MAX - 2);
        b.root_file_inst.store(file_inst, Relaxed);
        b.root_fd.store(fd, Relaxed);
    }

    /// Hands the workers started from now on a new supervisor file, and closes the supervisor's
    /// descriptor of the old one. Workers allocate in the file they inherit and may leave
    /// handles there when they exit; in one file that lives for the whole run those would pile
    /// up (a long run slowed down as they did: every PROCS and debugfs read walks them). The
    /// old file now goes when the last worker that inherited it exits, with what it holds:
    /// a release of a file full of handles whose creators have exited, which the run should
    /// make anyway. The old root allocation's pages stay the supervisor's until then.
    fn rotate_root(&mut self) {
        let Ok(fd) = Moreram::open() else {
            return;
        };
        let b = board();
        if let Some(r) = self.root.take() {
            // The workers that inherited the old file refer to the entry; the supervisor no
            // longer does.
            b.entry_unref(r.slot, r.uid);
        }
        b.root_fd.store(-1, Relaxed);
        // Tokens made in the old file live as long as it does, which the workers that
        // inherited it decide.
        b.set_state(b.root_file_inst.load(Relaxed), crate::board::EXITING);
        drop(std::mem::replace(&mut self.fd, fd));
        self.rotations += 1;
        self.root_setup();
    }

    /// Turns fail_alloc on (a low probability) or off; off returns how many failures it made.
    fn fail_alloc(&mut self, on: bool) -> u64 {
        const TIMES: i64 = 1_000_000;
        if on {
            let ok = write_file(&format!("{FAIL}/verbose"), "0")
                && write_file(&format!("{FAIL}/interval"), "1")
                && write_file(&format!("{FAIL}/times"), &TIMES.to_string())
                && write_file(&format!("{FAIL}/probability"), "2");
            self.ctx.what = "fail_alloc on".into();
            self.ctx.checked(Dim::Injection);
            if !ok {
                self.ctx.fail(
                    Dim::Injection,
                    "cannot set up moreram/fail_alloc in debugfs",
                );
            } else {
                board().failing.store(1, Relaxed);
            }
            0
        } else {
            write_file(&format!("{FAIL}/probability"), "0");
            let left = read_num(&format!("{FAIL}/times")).unwrap_or(TIMES);
            write_file(&format!("{FAIL}/times"), "1");
            // ALLOCs already past the check may still fail.
            std::thread::sleep(Duration::from_millis(50));
            board().failing.store(0, Relaxed);
            (TIMES - left).max(0) as u64
        }
    }

    fn slots(&self) -> Vec<u32> {
        match self.cfg.only {
            Some(k) => vec![k],
            None => (0..self.cfg.procs).collect(),
        }
    }

    fn spawn(&mut self, slot: u32, gen: u32) {
        let cfg = self.cfg.clone();
        let deadline = self.deadline;
        // The supervisor's file as the child inherits it: read from the board after the fork,
        // it could already be a newer one (`rotate_root`), whose descriptor the child lacks.
        let b = board();
        let inherited = (b.root_fd.load(Relaxed), b.root_file_inst.load(Relaxed));
        // SAFETY: the supervisor is single-threaded; the child runs the worker and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            worker_main(&cfg, slot, gen, deadline, self.root.as_ref(), inherited);
        }
        if pid > 0 {
            self.spawned += 1;
            self.workers.insert(slot, Worker { pid, gen });
        }
    }

    /// Reaps what exited: checks how, and restarts workers while there is time.
    fn reap(&mut self, block: bool) -> usize {
        let mut n = 0;
        loop {
            let mut st = 0;
            // SAFETY: waits for our own children.
            let pid = unsafe { libc::waitpid(-1, &mut st, if block { 0 } else { libc::WNOHANG }) };
            if pid <= 0 {
                return n;
            }
            n += 1;
            if Some(pid) == self.hog {
                self.hog = None;
                continue;
            }
            let Some((&slot, w)) = self.workers.iter().find(|(_, w)| w.pid == pid) else {
                continue;
            };
            let gen = w.gen;
            self.workers.remove(&slot);
            mark_dead(pid);
            self.ctx.what = format!("worker {slot} gen {gen} (pid {pid}) ended");
            self.ctx.checked(Dim::Processes);
            if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
                let c = &board().crash;
                let at = if c[0].load(Relaxed) == pid as u64 {
                    format!(
                        " (si_code {:#x}, address {:#x}, at fz_copy_out{:+#x})",
                        c[2].load(Relaxed),
                        c[3].load(Relaxed),
                        c[4].load(Relaxed) as i64
                    )
                } else {
                    String::new()
                };
                self.ctx.fail(
                    Dim::Processes,
                    &if libc::WIFSIGNALED(st) {
                        format!("killed by signal {}{at}", libc::WTERMSIG(st))
                    } else {
                        format!("exit status {}", libc::WEXITSTATUS(st))
                    },
                );
            }
            if Instant::now() + Duration::from_secs(2) < self.deadline && !board().stopping() {
                self.spawn(slot, gen + 1);
            }
            if block {
                return n;
            }
        }
    }

    fn main_loop(&mut self) {
        for slot in self.slots() {
            self.spawn(slot, 0);
        }
        let start = Instant::now();
        let total = self.deadline.saturating_duration_since(start);
        // The faults, spread over the run: the first unbind at 30% (at most a minute in), then
        // every 20 s; rmmod attempts at 20% (at most 40 s in) and every 15 s; memory pressure
        // from 10% (at most 20 s in) on.
        let first = |part: Duration, most: u64| start + part.min(Duration::from_secs(most));
        let mut next_unbind = first(total * 3 / 10, 60);
        let mut next_rmmod = first(total / 5, 40);
        let mut next_shrink = first(total / 10, 20);
        // A round of pressure faults in most of the VM's memory: under KASAN and TCG that took
        // about half the VM's CPU at one round every 8 s. A long run (over ten minutes) has
        // time for rounds a minute apart, and spends its CPU on the module instead.
        let shrink_every = Duration::from_secs(if total > Duration::from_secs(600) {
            60
        } else {
            8
        });
        let mut next_observe = start + Duration::from_secs(2);
        let mut next_rotate = start + Duration::from_secs(120);
        let mut last_report = start;
        let mut spent = [(0u64, 0u64); 32];
        let mut cpu = [0u64; 8];
        while Instant::now() < self.deadline {
            if self.cfg.total_ops > 0 && board().ops.load(Relaxed) >= self.cfg.total_ops {
                break;
            }
            self.reap(false);
            let now = Instant::now();
            if self.cfg.faults {
                if now >= next_unbind {
                    self.unbind_rebind();
                    next_unbind = Instant::now() + Duration::from_secs(20);
                }
                if now >= next_rmmod {
                    self.rmmod_attempt();
                    next_rmmod = Instant::now() + Duration::from_secs(15);
                }
                if now >= next_shrink {
                    self.pressure();
                    next_shrink = Instant::now() + shrink_every;
                }
            }
            if now >= next_rotate {
                self.rotate_root();
                next_rotate = Instant::now() + Duration::from_secs(120);
            }
            if now >= next_observe {
                self.observe();
                next_observe = Instant::now() + Duration::from_secs(5);
            }
            if let Some(k) = self.kcov.as_mut() {
                k.collect();
            }
            if !self.cfg.ktap {
                // Failures as they come, in a long run.
                let texts = board().fail_texts();
                for t in texts.iter().skip(self.printed) {
                    self.out.line(&format!("FAIL {t}"));
                }
                self.printed = self.printed.max(texts.len());
            }
            if !self.cfg.ktap && now.duration_since(last_report) >= Duration::from_secs(30) {
                last_report = now;
                let ops = board().ops.load(Relaxed);
                let s = now.duration_since(start).as_secs_f64();
                self.out.line(&format!(
                    "moreram-fuzz: {:.0} s: {ops} operations ({:.0}/s), {} processes started, {} failures",
                    s,
                    ops as f64 / s,
                    self.spawned,
                    board().nfails.load(Relaxed)
                ));
                self.out.line(&format!("  {}", busiest(&mut spent)));
                self.out.line(&format!("  {}", cpu_split(&mut cpu)));
                if let Some((files, handles, own)) = self.held {
                    self.out.line(&format!(
                        "  the kernel holds {handles} handles in {files} files ({own} in the supervisor's {} files)",
                        self.rotations + 1
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops everyone and waits for them, with a time limit: a process that does not stop hangs.
    fn finish_workers(&mut self) {
        board().stop.store(1, Relaxed);
        let limit = Instant::now() + Duration::from_secs(90);
        while !self.workers.is_empty() || self.hog.is_some() {
            if self.reap(false) == 0 {
                if Instant::now() > limit {
                    for (slot, w) in &self.workers {
                        self.ctx.what = format!("worker {slot} gen {} (pid {})", w.gen, w.pid);
                        self.ctx
                            .fail(Dim::Processes, "did not stop within 90 s of the end");
                        // SAFETY: our own child.
                        unsafe { libc::kill(w.pid, libc::SIGKILL) };
                    }
                    if let Some(h) = self.hog {
                        // SAFETY: our own child.
                        unsafe { libc::kill(h, libc::SIGKILL) };
                    }
                    while self.reap(true) > 0 && (!self.workers.is_empty() || self.hog.is_some()) {}
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Unbinds one device through sysfs while workers fault on it, then binds it again.
    fn unbind_rebind(&mut self) {
        let Ok(banks) = self.fd.banks() else { return };
        if banks.is_empty() {
            return;
        }
        let i = (self.unbinds as usize) % banks.len();
        let bank = &banks[i];
        let dev = pci_of(bank);
        let idx = bank.index as usize;
        let b = board();
        self.ctx.what = format!("unbind {dev} (bank {idx})");
        // Workers see the bank in flux from before the unbind until after the rebind.
        b.banks[idx].started.fetch_add(1, Relaxed);
        let ok = write_file(&format!("{DRV}/unbind"), &dev);
        self.ctx
            .count_only(Op::Unbind, if ok { 0 } else { libc::EIO as usize });
        self.ctx.checked(Dim::Injection);
        if !ok {
            b.banks[idx].done.fetch_add(1, Relaxed);
            self.ctx.fail(Dim::Injection, "unbind failed");
            return;
        }
        self.unbinds += 1;
        // Workers fault on the bank's pages meanwhile: SIGBUS.
        std::thread::sleep(Duration::from_millis(300));
        self.reap(false);
        self.ctx.what = format!("bind {dev}");
        let ok = write_file(&format!("{DRV}/bind"), &dev);
        b.banks[idx].done.fetch_add(1, Relaxed);
        self.ctx
            .count_only(Op::Rebind, if ok { 0 } else { libc::EIO as usize });
        self.ctx.checked(Dim::Injection);
        let back = self.fd.banks().map(|v| v.len()).unwrap_or(0);
        if !ok || back != banks.len() {
            self.ctx.fail(
                Dim::Injection,
                &format!("rebind: {} banks after, {} before", back, banks.len()),
            );
        } else {
            self.rebinds += 1;
        }
    }

    /// What admins read while everything runs: debugfs and each device's sysfs numbers.
    fn observe(&mut self) {
        let mut files: Vec<String> = ["banks", "processes", "leaks", "poison_errors", "memdebug"]
            .iter()
            .map(|f| format!("/sys/kernel/debug/moreram/{f}"))
            .collect();
        if let Ok(devs) = fs::read_dir(DRV) {
            for d in devs.flatten() {
                let p = d.path().join("moreram");
                if let Ok(attrs) = fs::read_dir(&p) {
                    files.extend(attrs.flatten().map(|a| a.path().display().to_string()));
                }
            }
        }
        for f in files {
            self.ctx.what = format!("read {f}");
            let code = match fs::read_to_string(&f) {
                Ok(v) => {
                    // (Each device's sysfs directory has a `processes` too.)
                    if f == "/sys/kernel/debug/moreram/processes" {
                        self.held = Some(held(&v, self.ctx.pid));
                    }
                    if f.ends_with("moreram/banks") && !self.dumped_pools && over_reserved(&v) {
                        // Pools hold more of a bank than it has free: say whose, once.
                        self.dumped_pools = true;
                        let procs = fs::read_to_string("/sys/kernel/debug/moreram/processes")
                            .unwrap_or_default();
                        let pools: Vec<&str> =
                            procs.lines().filter(|l| l.starts_with("pool")).collect();
                        eprintln!(
                            "moreram-fuzz: a bank's pools exceed its free memory:\n{v}{}",
                            pools.join("\n")
                        );
                    }
                    // The knobs take back what they show (their store path, changing nothing).
                    let knob = ["low_watermark", "min_watermark", "scavenge_deadline_ms"]
                        .iter()
                        .any(|k| f.ends_with(k));
                    if knob {
                        self.ctx.what = format!("write {} back to {f}", v.trim());
                        match fs::write(&f, v.trim()) {
                            Ok(()) => 0,
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(e) => e.raw_os_error().unwrap_or(libc::EIO) as usize,
                        }
                    } else {
                        0
                    }
                }
                // A device unbinding meanwhile takes its files with it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => e.raw_os_error().unwrap_or(libc::EIO) as usize,
            };
            self.ctx
                .judge(Op::Observe, code, crate::oracle::Codes::of(&[0]));
        }
        // Each bank's DRM device: its fdinfo tells the opener's use of the bank.
        if let Ok(cards) = fs::read_dir("/dev/dri") {
            for c in cards.flatten() {
                let Ok(f) = fs::File::open(c.path()) else {
                    continue;
                };
                self.ctx.what = format!("fdinfo of {}", c.path().display());
                let code = match fs::read_to_string(format!("/proc/self/fdinfo/{}", f.as_raw_fd()))
                {
                    Ok(_) => 0,
                    Err(e) => e.raw_os_error().unwrap_or(libc::EIO) as usize,
                };
                self.ctx
                    .judge(Op::Observe, code, crate::oracle::Codes::of(&[0]));
            }
        }
    }

    /// rmmod while files are open must be refused.
    fn rmmod_attempt(&mut self) {
        self.ctx.what = "rmmod moreram while files are open".into();
        // SAFETY: delete_module with a NUL-terminated name.
        let r = unsafe {
            libc::syscall(
                libc::SYS_delete_module,
                c"moreram".as_ptr(),
                libc::O_NONBLOCK,
            )
        };
        let e = if r == 0 { 0 } else { crate::engine::errno() };
        self.rmmods += 1;
        // userspace-api.rst: refused with EWOULDBLOCK (EAGAIN) while a file is open.
        self.ctx.judge_in(
            Dim::Injection,
            Op::Rmmod,
            e as usize,
            crate::oracle::Codes::of(&[libc::EAGAIN as usize]),
        );
        if r == 0 {
            self.out
                .line("moreram-fuzz: the module was unloaded while in use; stopping");
            board().stop.store(1, Relaxed);
        }
    }

    /// Memory pressure: a child fills anonymous memory in steps until little is left, holds it
    /// and lets go; and every shrinker is run through drop_caches. Pooled system pages must go
    /// back, and nothing else may be lost.
    fn pressure(&mut self) {
        write_file("/proc/sys/vm/drop_caches", "2");
        if self.hog.is_some() {
            return;
        }
        self.pressure_rounds += 1;
        // SAFETY: the supervisor is single-threaded; the child only maps and touches memory.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            write_file("/proc/self/oom_score_adj", "1000");
            let mut held = Vec::new();
            let step = 2 << 20;
            for _ in 0..256 {
                let avail = fs::read_to_string("/proc/meminfo")
                    .ok()
                    .and_then(|m| {
                        m.lines()
                            .find(|l| l.starts_with("MemAvailable:"))
                            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    })
                    .unwrap_or(0)
                    * 1024;
                if avail < 192 << 20 || board().stopping() {
                    break;
                }
                // SAFETY: a fresh anonymous mapping of our own, touched page by page.
                unsafe {
                    let p = libc::mmap(
                        std::ptr::null_mut(),
                        step,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    );
                    if p == libc::MAP_FAILED {
                        break;
                    }
                    for off in (0..step).step_by(4096) {
                        p.cast::<u8>().add(off).write_volatile(1);
                    }
                    held.push(p);
                }
            }
            std::thread::sleep(Duration::from_millis(1500));
            // SAFETY: leaves without the supervisor's destructors.
            unsafe { libc::_exit(0) };
        }
        if pid > 0 {
            self.hog = Some(pid);
        }
        self.ctx.count_only(Op::Pressure, 0);
    }

    /// The supervisor never asked for a signal: one sent by the module came from a NOTIFY set
    /// by another process on its file.
    fn check_signals(&mut self) {
        let c = &board().crash;
        if c[1].load(Relaxed) > 1000 {
            self.ctx.what = "signals the workers received".into();
            self.ctx.fail(
                Dim::Processes,
                &format!(
                    "pid {} was sent signal {} (si_code {:#x}) that it never asked for",
                    c[0].load(Relaxed),
                    c[1].load(Relaxed) - 1000,
                    c[2].load(Relaxed)
                ),
            );
        }
        let k = crate::signals::FROM_KERNEL.load(Relaxed);
        if k > 0 {
            self.ctx.what = "signals the supervisor received".into();
            let w = format!(
                "root received {k} signal(s) (last {}) sent by the module for a NOTIFY another user set on its file",
                crate::signals::LAST_SIGNAL.load(Relaxed)
            );
            self.ctx.defect(d::NOTIFY_SIGNAL, Dim::Processes, &w);
        }
    }

    /// After the run: the supervisor's own allocation and pool go, its file is closed (it holds
    /// what other users' workers left in it), and the tier must be back where it started.
    fn accounting(&mut self, start: Option<Snapshot>, injected: u64) -> bool {
        let b = board();
        if let Some(r) = &self.root {
            let _ = self.fd.free_raw(r.handle);
        }
        let _ = self.fd.scavenge();
        b.root_fd.store(-1, Relaxed);
        let old = std::mem::replace(
            &mut self.fd,
            match Moreram::open() {
                Ok(f) => f,
                Err(_) => return false,
            },
        );
        drop(old);
        self.ctx.what = "the tier after the run".into();
        let Some(start) = start else {
            self.ctx.fail(Dim::Accounting, "no snapshot at the start");
            return false;
        };
        let mut now = None;
        for _ in 0..50 {
            now = snapshot(&self.fd);
            if now.as_ref() == Some(&start) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.ctx.checked(Dim::Accounting);
        let Some(now) = now else {
            self.ctx.fail(Dim::Accounting, "cannot read the tier");
            return false;
        };
        if now == start {
            return true;
        }
        let only_system = now.banks == start.banks && now.owners == start.owners;
        let w = format!("start {start:?}, end {now:?}");
        if only_system && injected > 0 {
            // Issue 10 item 13: error paths leak SYSTEM_USED.
            self.ctx.defect(d::ERROR_PATH_LEAK, Dim::Accounting, &w)
        } else {
            self.ctx.fail(Dim::Accounting, &w);
            false
        }
    }

    fn report(&mut self, elapsed: Duration, injected: u64, _end_ok: bool) -> bool {
        let b = board();
        let ops = b.ops.load(Relaxed);
        let secs = elapsed.as_secs_f64().max(0.001);
        let o = &self.out;
        o.line(&format!(
            "moreram-fuzz: {ops} operations in {secs:.0} s ({:.0}/s) by {} worker processes (+ children), seed {}",
            ops as f64 / secs,
            self.spawned,
            self.cfg.seed
        ));
        if self.cfg.faults {
            o.line(&format!(
                "faults: fail_alloc made {injected} ALLOCs fail; {} unbinds, {} rebinds; {} rmmod attempts refused; {} memory pressure rounds (and drop_caches)",
                self.unbinds, self.rebinds, self.rmmods, self.pressure_rounds
            ));
        }
        // Where the time goes.
        let mut t = Vec::new();
        for (i, k) in crate::engine::KINDS.iter().enumerate() {
            let n = b.op_n[i].load(Relaxed);
            if n > 0 {
                t.push(format!(
                    "{} {n}x{:.1}ms",
                    k.4,
                    b.op_us[i].load(Relaxed) as f64 / n as f64 / 1000.0
                ));
            }
        }
        o.line("time per operation (wall clock, shared CPUs):");
        for c in t.chunks(6) {
            o.line(&format!("  {}", c.join(", ")));
        }
        // The table of result codes.
        o.line("results by call (ok, errnos, signals of memory accesses):");
        for (i, name) in OP_NAMES.iter().enumerate() {
            let mut cells = Vec::new();
            for c in 0..NCODES {
                let n = b.codes[i][c].load(Relaxed);
                if n > 0 {
                    cells.push(format!("{} {n}", code_name(c)));
                }
            }
            if !cells.is_empty() {
                o.line(&format!("  {name:<18} {}", cells.join(", ")));
            }
        }
        let pairs: usize = (0..OP_NAMES.len())
            .map(|i| {
                (0..NCODES)
                    .filter(|&c| b.codes[i][c].load(Relaxed) > 0)
                    .count()
            })
            .sum();
        o.line(&format!("  {pairs} (call, result) pairs reached"));
        let _ = (CODE_SEGV, CODE_BUS);
        // Known defects.
        for (i, d) in DEFECTS.iter().enumerate() {
            let n = b.defects[i].load(Relaxed);
            if n > 0 {
                o.line(&format!(
                    "defect {}{}: {n} hits: {}",
                    d.name,
                    if crate::oracle::known(i) {
                        " (tolerated)"
                    } else {
                        ""
                    },
                    d.what
                ));
                o.line(&format!("  first: {}", b.defect_first_text(i)));
            }
        }
        if self.cfg.coverage {
            self.coverage();
        }
        let o = &self.out;
        let fails = b.fail_texts();
        let nfails = b.nfails.load(Relaxed);
        for f in fails.iter().skip(self.printed) {
            o.line(&format!("FAIL {f}"));
        }
        if nfails as usize > fails.len() {
            o.line(&format!(
                "... and {} more failures",
                nfails as usize - fails.len()
            ));
        }
        let mut all_ok = true;
        for (i, name) in DIM_NAMES.iter().enumerate().take(NDIMS) {
            let c = b.dim_checks[i].load(Relaxed);
            let f = b.dim_fails[i].load(Relaxed);
            let ok = f == 0;
            all_ok &= ok;
            if self.cfg.ktap {
                if c == 0 && ok {
                    o.raw(&format!("ok {} fuzz-{name} # SKIP nothing checked", i + 1));
                } else {
                    o.line(&format!("{name}: {c} checks, {f} failed"));
                    o.raw(&format!(
                        "{} {} fuzz-{name}",
                        if ok { "ok" } else { "not ok" },
                        i + 1
                    ));
                }
            } else {
                o.line(&format!("{name:<12} {c:>10} checks {f:>6} failed"));
            }
        }
        if !self.cfg.ktap {
            o.line(&format!(
                "moreram-fuzz: {} (seed {})",
                if all_ok { "PASS" } else { "FAIL" },
                self.cfg.seed
            ));
        }
        all_ok
    }

    /// Which of the module's functions the run reached (KCOV).
    fn coverage(&self) {
        let b = board();
        let pcs: Vec<u64> = b
            .cov
            .iter()
            .map(|c| c.load(Relaxed))
            .filter(|&p| p != 0)
            .collect();
        let Ok(syms) = fs::read_to_string("/proc/kallsyms") else {
            self.out.line("coverage: /proc/kallsyms unreadable");
            return;
        };
        let mut funcs: Vec<(u64, String)> = syms
            .lines()
            .filter(|l| l.ends_with("[moreram]"))
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let a = u64::from_str_radix(w.next()?, 16).ok()?;
                let t = w.next()?;
                let n = w.next()?;
                (t == "t" || t == "T").then(|| (a, n.to_string()))
            })
            .collect();
        funcs.sort();
        if funcs.is_empty() || pcs.is_empty() {
            self.out.line(&format!(
                "coverage: none collected ({} PCs, {} module functions): is CONFIG_KCOV on and the module instrumented?",
                pcs.len(),
                funcs.len()
            ));
            return;
        }
        let mut hit = vec![0u32; funcs.len()];
        for pc in &pcs {
            let i = funcs.partition_point(|f| f.0 <= *pc);
            if i > 0 {
                hit[i - 1] += 1;
            }
        }
        // Only the module's own code: not the kernel crate's generic functions instantiated in
        // it, nor the KUnit tests.
        // The module's crate is `moreram_main` (its root file's name); the C shim's functions
        // are `moreram_*`.
        let ours = |n: &str| {
            let d = format!("{:#}", rustc_demangle::demangle(n));
            let own = d.starts_with("moreram_main::")
                || d.starts_with("<moreram_main::")
                || n.starts_with("moreram_");
            // Generic code instantiated for the KUnit tests only (`Runs<u32>`), and what runs
            // at load and unload, outside any campaign.
            let test = d.contains("::tests::")
                || d.contains("kunit")
                || d.contains("<u32>")
                || d.contains("InPlaceModule>::init")
                || d.contains(">::register")
                || (d.contains(" as core::ops::drop::Drop>::drop")
                    && (d.contains("Registration") || d.contains("Shrinker")));
            (own && !test, d)
        };
        let mut total = 0;
        let mut reached = 0;
        let mut missed = Vec::new();
        for (i, (_, n)) in funcs.iter().enumerate() {
            let (own, d) = ours(n);
            if !own {
                continue;
            }
            total += 1;
            if hit[i] > 0 {
                reached += 1;
            } else {
                missed.push(d);
            }
        }
        self.out.line(&format!(
            "coverage (KCOV): {reached} of {total} functions of the module reached ({} distinct PCs{})",
            pcs.len(),
            if b.cov_lost.load(Relaxed) > 0 { ", set full" } else { "" }
        ));
        missed.sort();
        for m in missed.iter().take(if self.cfg.ktap { 30 } else { 400 }) {
            self.out.line(&format!("  not reached: {m}"));
        }
    }
}

/// Marks the instance of `pid` (a worker that exited) dead.
fn mark_dead(pid: i32) {
    let b = board();
    for i in b.inst.iter().take(MAX_INST) {
        if i.pid.load(Relaxed) == pid && i.state.load(Relaxed) != DEAD {
            let id = i.id.load(Relaxed);
            if b.state(id) == ALIVE || b.state(id) == crate::board::EXITING {
                b.set_state(id, DEAD);
            }
        }
    }
}

/// Where the operations' time went since the last call (`seen`: the totals then): the kinds
/// that took most of it, with their share, count and mean wall-clock time.
fn busiest(seen: &mut [(u64, u64); 32]) -> String {
    let b = board();
    let mut d = Vec::new();
    for (i, k) in crate::engine::KINDS.iter().enumerate().take(seen.len()) {
        let (us, n) = (b.op_us[i].load(Relaxed), b.op_n[i].load(Relaxed));
        let (dus, dn) = (us - seen[i].0, n - seen[i].1);
        seen[i] = (us, n);
        if dn > 0 {
            d.push((dus, dn, k.4));
        }
    }
    let total: u64 = d.iter().map(|x| x.0).sum::<u64>().max(1);
    d.sort_by_key(|x| std::cmp::Reverse(x.0));
    let top: Vec<String> = d
        .iter()
        .take(5)
        .map(|(us, n, name)| {
            format!(
                "{name} {}% ({n}x{:.0}ms)",
                us * 100 / total,
                *us as f64 / *n as f64 / 1000.0
            )
        })
        .collect();
    format!("time since the last line: {}", top.join(", "))
}

/// Whether debugfs `moreram/banks` shows a bank whose pools hold more than it has free.
fn over_reserved(banks: &str) -> bool {
    banks.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        // "size N free N largest_free N pooled N"
        let at = |k: &str| {
            w.iter()
                .position(|x| *x == k)
                .and_then(|i| w.get(i + 1))
                .and_then(|x| x.parse::<u64>().ok())
        };
        matches!((at("free"), at("pooled")), (Some(f), Some(p)) if p > f)
    })
}

/// How the machine's CPUs spent the time since the last call (`seen`: /proc/stat's totals
/// then): in user space (the workers' models), in the kernel, idle, waiting.
fn cpu_split(seen: &mut [u64; 8]) -> String {
    let now: Vec<u64> = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(8)
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default();
    if now.len() < 8 {
        return "cpu: /proc/stat unreadable".into();
    }
    let d: Vec<u64> = (0..8).map(|i| now[i].saturating_sub(seen[i])).collect();
    seen.copy_from_slice(&now[..8]);
    let total = d.iter().sum::<u64>().max(1);
    let pct = |x: u64| x * 100 / total;
    // user, nice, system, idle, iowait, irq, softirq, steal
    format!(
        "cpu: user {}%, kernel {}%, softirq {}%, idle {}%",
        pct(d[0] + d[1]),
        pct(d[2] + d[5]),
        pct(d[6]),
        pct(d[3] + d[4])
    )
}
