//! The board: memory shared by every process of a run (a memfd, so that a child that `exec`s
//! maps it again). It holds what processes must agree on to judge each other's results:
//!
//! - the instances: every process of the run, its pid, user and whether it is alive;
//! - the shared allocations: for each, who owns and may write each page, who last wrote it, its
//!   share token, its named readers; each behind a robust process-shared mutex, held while a
//!   process changes the allocation's rights or contents in the kernel *and* here, so that
//!   whoever holds it knows exactly what the kernel must do;
//! - the banks' unbind epochs, written by the supervisor around each unbind;
//! - the results: errno table, oracle dimensions, known-defect hits, failures, coverage.

use std::{
    cell::UnsafeCell,
    sync::{
        atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::*},
        OnceLock,
    },
};

pub const MAX_INST: usize = 4096;
pub const MAX_ENTRIES: usize = 1024;
/// Pages of an allocation the board tracks: larger allocations stay private to their process.
pub const TRACK: usize = 64;
pub const MAX_WRITERS: usize = 3;
pub const MAX_READERS: usize = 6;
pub const MAX_BANKS: usize = 8;
pub const NCODES: usize = 136;
pub const CODE_SEGV: usize = 134;
pub const CODE_BUS: usize = 135;
pub const MAX_OPS: usize = 48;
pub const MAX_DEFECTS: usize = 24;
pub const MAX_DIMS: usize = 12;
pub const MAX_FAILS: usize = 40;
pub const FAIL_LEN: usize = 600;
pub const COV_SLOTS: usize = 1 << 15;
pub const OLD_TOKENS: usize = 64;

/// Who a page belongs to, or who may write it: nobody, an instance of the run, or a process
/// known only by its number (a pid given to that was not an instance's, or that may have been
/// reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Nobody,
    Inst(u32),
    Pid(i32),
}

impl Who {
    pub fn encode(self) -> u64 {
        match self {
            Who::Nobody => 0,
            Who::Inst(i) => (1 << 32) | u64::from(i),
            Who::Pid(p) => (2 << 32) | u64::from(p as u32),
        }
    }

    pub fn decode(v: u64) -> Who {
        match v >> 32 {
            1 => Who::Inst(v as u32),
            2 => Who::Pid(v as u32 as i32),
            _ => Who::Nobody,
        }
    }
}

/// One page of a shared allocation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PageRec {
    /// [`Who`], encoded.
    pub owner: u64,
    /// Writers besides the owner, [`Who`] encoded.
    pub writers: [u64; MAX_WRITERS],
    pub nwriters: u32,
    /// The instance that wrote the page last (0: never written: zeros).
    pub last_writer: u32,
    pub gen: u32,
    /// A write was cut short by a fault, or a holder of the lock died: any word of this page may
    /// be the old or the new one.
    pub torn: u32,
}

impl PageRec {
    pub fn owner(&self) -> Who {
        Who::decode(self.owner)
    }

    pub fn writers(&self) -> impl Iterator<Item = Who> + '_ {
        self.writers[..self.nwriters as usize]
            .iter()
            .map(|&w| Who::decode(w))
    }

    pub fn add_writer(&mut self, w: Who) -> bool {
        if self.writers().any(|x| x == w) {
            return true;
        }
        if self.nwriters as usize == MAX_WRITERS {
            return false;
        }
        self.writers[self.nwriters as usize] = w.encode();
        self.nwriters += 1;
        true
    }

    pub fn remove_writer(&mut self, w: Who) {
        let ws: Vec<u64> = self
            .writers()
            .filter(|&x| x != w)
            .map(Who::encode)
            .collect();
        self.nwriters = ws.len() as u32;
        self.writers = [0; MAX_WRITERS];
        self.writers[..ws.len()].copy_from_slice(&ws);
    }

    pub fn clear_writers(&mut self) {
        self.nwriters = 0;
        self.writers = [0; MAX_WRITERS];
    }
}

/// What the board knows of one allocation, under its entry's lock.
#[repr(C)]
#[derive(Default)]
pub struct Meta {
    /// Run-wide id of the allocation (0: the slot is free).
    pub uid: u64,
    /// Processes whose model refers to it.
    pub refs: u32,
    /// A holder of the lock died: the record may be behind the kernel.
    pub tainted: u32,
    pub creator: u32,
    pub creator_pid: i32,
    pub creator_euid: u32,
    pub npages: u32,
    pub vram: u32,
    pub bank: u32,
    /// The bank's unbind count when it was allocated, and whether no unbind was under way then.
    pub bank_epoch: u32,
    pub epoch_certain: u32,
    /// The share token, live while `token_live`; the instance whose handle it was made from.
    pub token: u64,
    pub token_live: u32,
    /// The instance whose handle (or whose file, for a child's handle in it) the token lives
    /// with.
    pub token_sharer: u32,
    /// The user that made the token: without a name, its processes may import.
    pub token_euid: u32,
    /// [`Who`] the share names, or 0 for any process of the creator's user.
    pub token_named: u64,
    pub readers: [u64; MAX_READERS],
    pub nreaders: u32,
    /// Bumped after a rights change that must be seen by racing writers.
    pub race_flag: u32,
    /// Instances holding a handle of it (whose consent a GIVE needs, issue 10 item 4).
    pub holders: [u32; MAX_READERS],
    pub nholders: u32,
    pub holders_full: u32,
    /// The allocation's flags, as ALLOC got them.
    pub flags: u32,
    /// Its mmap offset, in bytes.
    pub offset: u64,
}

impl Meta {
    pub fn readers(&self) -> impl Iterator<Item = Who> + '_ {
        self.readers[..self.nreaders as usize]
            .iter()
            .map(|&w| Who::decode(w))
    }

    pub fn add_reader(&mut self, w: Who) {
        if self.readers().any(|x| x == w) || self.nreaders as usize == MAX_READERS {
            return;
        }
        self.readers[self.nreaders as usize] = w.encode();
        self.nreaders += 1;
    }

    /// The readers list is full: the model no longer knows every named reader.
    pub fn readers_full(&self) -> bool {
        self.nreaders as usize == MAX_READERS
    }

    pub fn add_holder(&mut self, i: u32) {
        if self.holders[..self.nholders as usize].contains(&i) {
            return;
        }
        if self.nholders as usize == MAX_READERS {
            self.holders_full = 1;
            return;
        }
        self.holders[self.nholders as usize] = i;
        self.nholders += 1;
    }

    pub fn remove_holder(&mut self, i: u32) {
        let n = self.nholders as usize;
        if let Some(k) = self.holders[..n].iter().position(|&x| x == i) {
            self.holders.copy_within(k + 1..n, k);
            self.nholders -= 1;
        }
    }

    /// Whether instance `i` holds a handle: `None` when the list overflowed and it is not in it.
    pub fn holds_handle(&self, i: u32) -> Option<bool> {
        if self.holders[..self.nholders as usize].contains(&i) {
            Some(true)
        } else if self.holders_full != 0 {
            None
        } else {
            Some(false)
        }
    }
}

#[repr(C)]
pub struct EntryData {
    pub meta: Meta,
    pub pages: [PageRec; TRACK],
    /// The last changes the models made to the record, for a failure's report.
    pub hist: History,
}

/// Changes made to an entry's record: a ring of short texts, each tagged with the allocation's
/// uid (a slot is reused).
#[repr(C)]
pub struct History {
    next: u32,
    recs: [[u8; HIST_LEN]; HIST],
}

const HIST: usize = 16;
const HIST_LEN: usize = 160;

impl History {
    pub fn note(&mut self, uid: u64, text: &str) {
        let t = format!("{uid} {text}");
        let b = t.as_bytes();
        let n = b.len().min(HIST_LEN - 1);
        let rec = &mut self.recs[self.next as usize % HIST];
        rec[..n].copy_from_slice(&b[..n]);
        rec[n..].fill(0);
        self.next = self.next.wrapping_add(1);
    }

    /// The texts noted for allocation `uid`, oldest first.
    pub fn of(&self, uid: u64) -> Vec<String> {
        let prefix = format!("{uid} ");
        (0..HIST)
            .map(|k| &self.recs[(self.next as usize + k) % HIST])
            .map(|r| {
                let end = r.iter().position(|&c| c == 0).unwrap_or(HIST_LEN);
                String::from_utf8_lossy(&r[..end]).into_owned()
            })
            .filter(|t| t.starts_with(&prefix))
            .map(|t| t[prefix.len()..].to_string())
            .collect()
    }
}

#[repr(C)]
pub struct Entry {
    lock: UnsafeCell<libc::pthread_mutex_t>,
    data: UnsafeCell<EntryData>,
}

/// An entry, locked; unlocked on drop.
pub struct Locked<'a> {
    e: &'a Entry,
}

impl std::ops::Deref for Locked<'_> {
    type Target = EntryData;
    fn deref(&self) -> &EntryData {
        // SAFETY: the lock is held.
        unsafe { &*self.e.data.get() }
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut EntryData {
        // SAFETY: the lock is held, and `&mut self` is exclusive within the process.
        unsafe { &mut *self.e.data.get() }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: locked by `Entry::lock`.
        unsafe { libc::pthread_mutex_unlock(self.e.lock.get()) };
    }
}

impl Entry {
    pub fn lock(&self) -> Locked<'_> {
        // SAFETY: the mutex was initialised robust and process-shared by `Board::create`.
        let r = unsafe { libc::pthread_mutex_lock(self.lock.get()) };
        let mut l = Locked { e: self };
        if r == libc::EOWNERDEAD {
            // Its holder died midway: what it was doing may be half done.
            // SAFETY: we hold the mutex, in the EOWNERDEAD state.
            unsafe { libc::pthread_mutex_consistent(self.lock.get()) };
            l.meta.tainted = 1;
        }
        l
    }
}

#[repr(C)]
pub struct Inst {
    pub id: AtomicU32,
    pub pid: AtomicI32,
    pub uid: AtomicU32,
    pub state: AtomicU32,
    pub parent: AtomicU32,
    /// The supervisor's slot number for a worker, or u32::MAX for a child.
    pub slot: AtomicU32,
    /// It made handles in a file that outlives it (its parent's, the supervisor's): after it
    /// dies they stay, and so do its pages' owner and writers and its tokens.
    pub lingers: AtomicU32,
}

pub const ALIVE: u32 = 1;
pub const EXITING: u32 = 2;
pub const DEAD: u32 = 3;

#[repr(C)]
pub struct BankEpoch {
    /// Unbinds of the bank with this index started, and finished with the rebind.
    pub started: AtomicU32,
    pub done: AtomicU32,
}

#[repr(C)]
pub struct FailRec {
    pub len: AtomicU32,
    pub text: UnsafeCell<[u8; FAIL_LEN]>,
}

#[repr(C)]
pub struct Board {
    pub magic: u64,
    pub seed: AtomicU64,
    pub stop: AtomicU32,
    /// Defects (bit per index of `oracle::DEFECTS`) that are reported but do not fail the run.
    pub known: AtomicU64,
    pub next_uid: AtomicU64,
    pub next_inst: AtomicU32,
    /// File ids, unique over the run: a child's report names files by id, and an id of a file
    /// the child opened must never be taken for one of its parent's.
    pub next_file: AtomicU32,
    pub supervisor_pid: AtomicI32,
    pub supervisor_inst: AtomicU32,
    /// A descriptor of /dev/moreram opened by root (the supervisor) that the other user's
    /// workers inherit; -1 if none.
    pub root_fd: AtomicI32,
    /// The instance standing for the supervisor's file of `root_fd` (see `Sup::rotate_root`):
    /// the sharer of tokens made in it, alive while the supervisor holds the file, "exiting"
    /// (it may be gone) once a newer one replaced it.
    pub root_file_inst: AtomicU32,
    pub ops: AtomicU64,
    /// fail_alloc injects failures: any ALLOC may fail with ENOMEM.
    pub failing: AtomicU32,
    pub banks: [BankEpoch; MAX_BANKS],
    pub inst: [Inst; MAX_INST],
    pub entries: [Entry; MAX_ENTRIES],
    pub old_tokens: [AtomicU64; OLD_TOKENS],
    pub old_token_next: AtomicU32,
    pub codes: [[AtomicU64; NCODES]; MAX_OPS],
    pub defects: [AtomicU64; MAX_DEFECTS],
    /// Where each defect was first seen.
    pub defect_first: [FailRec; MAX_DEFECTS],
    pub dim_checks: [AtomicU64; MAX_DIMS],
    pub dim_fails: [AtomicU64; MAX_DIMS],
    pub nfails: AtomicU32,
    pub fails: [FailRec; MAX_FAILS],
    pub cov: [AtomicU64; COV_SLOTS],
    pub cov_lost: AtomicU64,
    /// Time spent in each kind of operation (`engine::KINDS`), and how many.
    pub op_us: [AtomicU64; 32],
    pub op_n: [AtomicU64; 32],
    /// The last fault outside a probe (the process then dies of it): pid, signal, si_code,
    /// address, and the instruction pointer relative to `fz_copy_out`.
    pub crash: [AtomicU64; 5],
    /// Slow calls (over a second): (op, microseconds) of the slowest.
    pub slowest_us: AtomicU64,
    pub slowest_op: AtomicU32,
}

// SAFETY: every field is an atomic, or behind the entries' mutexes (`Locked`), or written before
// the processes start.
unsafe impl Sync for Board {}

static BOARD: OnceLock<&'static Board> = OnceLock::new();

const MAGIC: u64 = 0x6d6f_7265_7261_6d46;

/// The board of this run.
pub fn board() -> &'static Board {
    BOARD.get().expect("board not mapped")
}

fn map(fd: i32) -> &'static Board {
    let len = std::mem::size_of::<Board>();
    // SAFETY: maps the memfd shared; the mapping lives as long as the process.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    assert!(
        p != libc::MAP_FAILED,
        "mmap board: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `len` bytes of shared memory, valid for the rest of the process's life; every bit
    // pattern is valid for the board's fields (atomics, integers, initialised mutexes).
    unsafe { &*p.cast::<Board>() }
}

impl Board {
    /// Makes the board of a new run; returns it and its memfd (inherited across `exec`).
    pub fn create(seed: u64) -> (&'static Board, i32) {
        // SAFETY: a plain memfd, without close-on-exec.
        let fd = unsafe { libc::memfd_create(c"moreram-fuzz-board".as_ptr(), 0) };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        // SAFETY: sizes the new memfd.
        let r = unsafe { libc::ftruncate(fd, std::mem::size_of::<Board>() as libc::off_t) };
        assert!(r == 0, "ftruncate board");
        let b = map(fd);
        // SAFETY: nobody else maps the board yet: its mutexes are initialised here, once.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            for e in b.entries.iter() {
                libc::pthread_mutex_init(e.lock.get(), &attr);
            }
            let m = std::ptr::from_ref(b).cast_mut();
            (*m).magic = MAGIC;
        }
        b.seed.store(seed, Relaxed);
        b.root_fd.store(-1, Relaxed);
        b.next_uid.store(1, Relaxed);
        let _ = BOARD.set(b);
        (b, fd)
    }

    /// Maps the board of this run from its inherited memfd (after `exec`).
    pub fn attach(fd: i32) -> &'static Board {
        let b = map(fd);
        assert!(b.magic == MAGIC, "not a moreram-fuzz board");
        let _ = BOARD.set(b);
        b
    }

    /// Adds an instance: this process, `pid`, running as `uid`.
    pub fn register(&self, pid: i32, uid: u32, parent: u32, slot: u32) -> u32 {
        let id = self.next_inst.fetch_add(1, Relaxed) + 1;
        let i = &self.inst[id as usize % MAX_INST];
        i.state.store(ALIVE, Relaxed);
        i.pid.store(pid, Relaxed);
        i.uid.store(uid, Relaxed);
        i.parent.store(parent, Relaxed);
        i.slot.store(slot, Relaxed);
        i.lingers.store(0, Relaxed);
        i.id.store(id, Release);
        id
    }

    /// Instance `id`'s state: [`ALIVE`], [`EXITING`] or [`DEAD`].
    pub fn state(&self, id: u32) -> u32 {
        let i = &self.inst[id as usize % MAX_INST];
        if i.id.load(Acquire) != id {
            return DEAD;
        }
        i.state.load(Acquire)
    }

    pub fn set_state(&self, id: u32, state: u32) {
        let i = &self.inst[id as usize % MAX_INST];
        if i.id.load(Acquire) == id {
            i.state.store(state, Release);
        }
    }

    /// Instance `id` made a handle in a file that outlives it.
    pub fn set_lingers(&self, id: u32) {
        let i = &self.inst[id as usize % MAX_INST];
        if i.id.load(Acquire) == id {
            i.lingers.store(1, Relaxed);
        }
    }

    pub fn lingers(&self, id: u32) -> bool {
        let i = &self.inst[id as usize % MAX_INST];
        i.id.load(Acquire) == id && i.lingers.load(Relaxed) != 0
    }

    pub fn pid_of(&self, id: u32) -> i32 {
        let i = &self.inst[id as usize % MAX_INST];
        if i.id.load(Acquire) != id {
            return 0;
        }
        i.pid.load(Relaxed)
    }

    /// Takes a free entry for a new allocation; `None` when the board is full.
    pub fn new_entry(&self, start: usize) -> Option<(usize, u64)> {
        for k in 0..MAX_ENTRIES {
            let slot = (start + k) % MAX_ENTRIES;
            let mut e = self.entries[slot].lock();
            if e.meta.uid == 0 {
                let uid = self.next_uid.fetch_add(1, Relaxed);
                // SAFETY: zero is a valid value of every field.
                unsafe { std::ptr::write_bytes(std::ptr::from_mut(&mut *e), 0, 1) };
                e.meta.uid = uid;
                e.meta.refs = 1;
                return Some((slot, uid));
            }
        }
        None
    }

    /// One more process refers to entry `slot` (if it still holds allocation `uid`).
    pub fn entry_ref(&self, slot: usize, uid: u64) -> bool {
        let mut e = self.entries[slot].lock();
        if e.meta.uid != uid {
            return false;
        }
        e.meta.refs += 1;
        true
    }

    /// A process no longer refers to entry `slot`; the last one frees it.
    pub fn entry_unref(&self, slot: usize, uid: u64) {
        let mut e = self.entries[slot].lock();
        if e.meta.uid == uid {
            e.meta.refs = e.meta.refs.saturating_sub(1);
            if e.meta.refs == 0 {
                // Its token may outlive every model (a handle lingering in another's file):
                // forgotten, not retired.
                e.meta.uid = 0;
            }
        }
    }

    /// A new file id (never 0).
    pub fn file_id(&self) -> u32 {
        self.next_file.fetch_add(1, Relaxed) + 1
    }

    /// Remembers a token that names nothing any more.
    pub fn retire_token(&self, token: u64) {
        let i = self.old_token_next.fetch_add(1, Relaxed) as usize % OLD_TOKENS;
        self.old_tokens[i].store(token, Relaxed);
    }

    /// Counts `code` (an errno, 0, or [`CODE_SEGV`]/[`CODE_BUS`]) for operation `op`.
    pub fn count(&self, op: usize, code: usize) {
        self.codes[op.min(MAX_OPS - 1)][code.min(NCODES - 1)].fetch_add(1, Relaxed);
    }

    /// Records a failure's text, if there is room.
    pub fn fail_text(&self, text: &str) {
        let n = self.nfails.fetch_add(1, Relaxed) as usize;
        if n < MAX_FAILS {
            let b = text.as_bytes();
            let len = b.len().min(FAIL_LEN);
            // SAFETY: slot `n` is written only by the process that drew `n`.
            unsafe { (&mut (*self.fails[n].text.get()))[..len].copy_from_slice(&b[..len]) };
            self.fails[n].len.store(len as u32, Release);
        }
    }

    /// Keeps where defect `i` was first seen (the caller saw its count go from 0).
    pub fn defect_text(&self, i: usize, text: &str) {
        let b = text.as_bytes();
        let len = b.len().min(FAIL_LEN);
        // SAFETY: only the process that counted the first hit writes it.
        unsafe { (&mut (*self.defect_first[i].text.get()))[..len].copy_from_slice(&b[..len]) };
        self.defect_first[i].len.store(len as u32, Release);
    }

    pub fn defect_first_text(&self, i: usize) -> String {
        let len = self.defect_first[i].len.load(Acquire) as usize;
        // SAFETY: written before `len` was published.
        let t = unsafe { &(&*self.defect_first[i].text.get())[..len] };
        String::from_utf8_lossy(t).into_owned()
    }

    pub fn fail_texts(&self) -> Vec<String> {
        let n = (self.nfails.load(Acquire) as usize).min(MAX_FAILS);
        (0..n)
            .map(|i| {
                let len = self.fails[i].len.load(Acquire) as usize;
                // SAFETY: written before `len` was published.
                let t = unsafe { &(&*self.fails[i].text.get())[..len] };
                String::from_utf8_lossy(t).into_owned()
            })
            .collect()
    }

    /// Adds a covered program counter to the set.
    pub fn cover(&self, pc: u64) {
        let mut h = (pc.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % COV_SLOTS;
        for _ in 0..64 {
            match self.cov[h].compare_exchange(0, pc, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(v) if v == pc => return,
                Err(_) => h = (h + 1) % COV_SLOTS,
            }
        }
        self.cov_lost.fetch_add(1, Relaxed);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Relaxed) != 0
    }
}
