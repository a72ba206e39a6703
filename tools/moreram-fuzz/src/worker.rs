//! A worker process: its main thread runs the engine with every operation; a second thread
//! (the chaos thread) runs the engine on a file of its own with private allocations, so that
//! the process's calls race with each other in the kernel.

use crate::{
    board::{board, Who, EXITING, TRACK},
    children::NOBODY,
    engine::{Engine, Kind, PAGE},
    kcov::Kcov,
    model::{ARef, FileM, HandleM, Me, Model},
    oracle::Ctx,
    probe,
    rng::Rng,
    Config,
};
use std::{
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

/// Bytes of RAM.
pub fn total_ram() -> u64 {
    // SAFETY: `sysinfo` fills the struct it is given.
    unsafe {
        let mut i: libc::sysinfo = std::mem::zeroed();
        libc::sysinfo(&mut i);
        i.totalram as u64 * u64::from(i.mem_unit)
    }
}

/// A page mapped read-only.
fn ro_page() -> usize {
    // SAFETY: a fresh anonymous page of our own.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE as usize,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    p as usize
}

/// An engine for `m`, with the defaults.
pub fn engine(rng: Rng, ctx: Ctx, m: Model, kind: Kind) -> Engine {
    Engine {
        rng,
        ctx,
        m,
        kind,
        budget: u64::MAX,
        deadline: Instant::now() + Duration::from_secs(3600),
        bank_sizes: Vec::new(),
        epochs_seen: [0; crate::board::MAX_BANKS],
        tokens: Vec::new(),
        hog: None,
        ro_page: ro_page(),
        children: 0,
        use_board: kind != Kind::Chaos,
        total_ram: total_ram(),
        alt_node: std::env::var("MORERAM_FUZZ_ALT")
            .ok()
            .and_then(|p| std::ffi::CString::new(p).ok()),
        strict_inputs: false,
        parent: None,
        parent_maps: Vec::new(),
        kcov: None,
    }
}

/// Opens /dev/moreram for a model.
fn open_file(m: &mut Model, nonblock: bool) -> Option<u32> {
    let mut flags = libc::O_RDWR | libc::O_CLOEXEC;
    if nonblock {
        flags |= libc::O_NONBLOCK;
    }
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c"/dev/moreram".as_ptr(), flags) };
    if fd < 0 {
        return None;
    }
    let id = board().file_id();
    m.files.push(FileM {
        id,
        fds: vec![fd],
        nonblock,
        alt: false,
        crowded: false,
        rdonly: false,
        foreign: false,
        owner_inst: m.me.inst,
        handles: Vec::new(),
        max_handle: 0,
        leaked: 0,
        sibling_freed: false,
        stale_offsets: Vec::new(),
    });
    Some(id)
}

/// The supervisor's allocation in its file, which every worker inherits: `(handle, slot, uid)`.
pub struct RootAlloc {
    pub handle: u32,
    pub slot: usize,
    pub uid: u64,
    pub npages: u64,
    pub offset: u64,
    pub vram: bool,
    pub bank: u32,
    pub holder: u32,
}

/// The worker of slot `slot`, generation `gen`: forked by the supervisor; never returns.
pub fn worker_main(
    cfg: &Config,
    slot: u32,
    gen: u32,
    deadline: Instant,
    root: Option<&RootAlloc>,
    (root_fd, root_file_inst): (i32, u32),
) -> ! {
    let b = board();
    // Coverage is opened as root, before a worker of the other user drops its privileges.
    let kcov_main = if cfg.coverage { Kcov::open() } else { None };
    let kcov_chaos = if cfg.coverage && cfg.threads {
        Kcov::open()
    } else {
        None
    };
    let nobody = cfg.nobody_slot(slot);
    if nobody {
        // SAFETY: drops to the other user for good.
        unsafe {
            libc::setgroups(0, std::ptr::null());
            if libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
                libc::_exit(40);
            }
        }
    }
    // SAFETY: no preconditions.
    let (pid, euid) = unsafe { (libc::getpid(), libc::geteuid()) };
    let inst = b.register(pid, euid, 0, slot);
    probe::install();
    crate::signals::install_counting();
    let me = Me {
        inst,
        pid,
        euid,
        admin: euid == 0,
    };
    let seed = cfg.seed;
    let ctx = Ctx {
        seed,
        inst,
        pid,
        role: format!("worker {slot} gen {gen}"),
        ..Default::default()
    };
    let mut m = Model::new(me, 1 << 30);
    open_file(&mut m, false);
    let mut rng = Rng::new(seed, Rng::stream_of(u64::from(slot), u64::from(gen), 0));
    if rng.one_in(2) {
        open_file(&mut m, rng.one_in(2));
    }
    // The supervisor's file, inherited: another process's, shared with every worker.
    if root_fd >= 0 {
        let id = b.file_id();
        let mut handles = Vec::new();
        if let Some(r) = root {
            handles.push(HandleM {
                h: r.handle,
                a: ARef {
                    uid: r.uid,
                    slot: Some(r.slot),
                },
                holder: r.holder,
                npages: r.npages,
                offset: r.offset,
                vram: r.vram,
                bank: r.bank,
                flags: crate::model::FLAGS_UNKNOWN,
                opaque: false,
            });
            b.entry_ref(r.slot, r.uid);
        }
        m.files.push(FileM {
            id,
            fds: vec![root_fd],
            nonblock: false,
            alt: false,
            crowded: true,
            rdonly: false,
            foreign: true,
            owner_inst: root_file_inst,
            handles,
            max_handle: root.map_or(0, |r| r.handle),
            leaked: 0,
            sibling_freed: false,
            stale_offsets: Vec::new(),
        });
    }
    let mut e = engine(rng, ctx, m, Kind::Worker);
    e.deadline = deadline;
    e.budget = e
        .rng
        .range(cfg.worker_ops / 2, cfg.worker_ops * 3 / 2)
        .max(10);
    e.strict_inputs = cfg.strict_inputs;
    e.kcov = kcov_main.filter(|k| k.enable());
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        if cfg.threads {
            let stop = &stop;
            s.spawn(move || chaos(seed, slot, gen, me, deadline, stop, kcov_chaos));
        }
        e.run();
        stop.store(true, Relaxed);
    });
    // Leaving: first say so (pages this process owns go ownerless as it exits), then let go
    // of the board entries.
    b.set_state(inst, EXITING);
    let mut refs: Vec<ARef> =
        e.m.files
            .iter()
            .flat_map(|f| f.handles.iter().map(|h| h.a))
            .chain(e.m.maps.iter().map(|m| m.a))
            .filter(|a| a.slot.is_some())
            .collect();
    refs.sort_by_key(|a| a.uid);
    refs.dedup();
    for a in refs {
        if let Some(mut v) = crate::model::view_in(&mut e.m.privs, a) {
            let (meta, _) = v.split();
            if meta.token_sharer == inst && meta.token_live == 1 {
                meta.token_live = 2;
            }
        }
        board().entry_unref(a.slot.unwrap(), a.uid);
    }
    let _ = Who::Nobody;
    let _ = TRACK;
    std::process::exit(0);
}

/// The chaos thread: its own file and private allocations, the same process.
fn chaos(
    seed: u64,
    slot: u32,
    gen: u32,
    me: Me,
    deadline: Instant,
    stop: &std::sync::atomic::AtomicBool,
    kcov: Option<Kcov>,
) {
    let mut m = Model::new(me, 256 << 20);
    if open_file(&mut m, true).is_none() {
        return;
    }
    let ctx = Ctx {
        seed,
        inst: me.inst,
        pid: me.pid,
        role: format!("worker {slot} gen {gen} chaos thread"),
        ..Default::default()
    };
    let rng = Rng::new(
        seed,
        Rng::stream_of(u64::from(slot), u64::from(gen), 1 << 23),
    );
    let mut e = engine(rng, ctx, m, Kind::Chaos);
    e.kcov = kcov.filter(|k| k.enable());
    e.refresh_banks();
    while !stop.load(Relaxed) && Instant::now() < deadline && !board().stopping() {
        e.budget = e.ctx.op_index + 50;
        e.run();
    }
}
