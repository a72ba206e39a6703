//! User-space access to `/dev/moreram`: GPU memory, seen through a PCI BAR, as a memory tier.
//!
//! - [`Moreram`] is an open `/dev/moreram`: banks, the tier's numbers, pools and their events,
//!   and allocation.
//! - [`Allocation`] is memory allocated (or imported) through a file: freed when dropped. It
//!   borrows its file, since a handle means something only in the file that made it.
//! - [`Mapping`] is a mapping of it: unmapped when dropped. Pages stay until their last mapping
//!   goes, even after their allocation was freed.
//! - [`sys`] is the ABI itself, generated from the kernel header, with one raw wrapper per
//!   ioctl; the `*_raw` methods of [`Moreram`] take raw requests and handles for callers, such as
//!   tests, that need to send what the typed API would not.
//!
//! ```no_run
//! use moreram::{Moreram, Placement};
//!
//! let mr = Moreram::open()?;
//! for bank in mr.banks()? {
//!     println!("bank {}: {} MiB", bank.index, bank.size >> 20);
//! }
//! let a = mr.alloc(1 << 20, Placement::PreferVram, false)?;
//! let mut m = a.map()?;
//! m.as_mut_slice().fill(0x5a);
//! println!("{} in {}", moreram::human_size(a.size()), a.tier());
//! // `m` is unmapped, then `a` freed, then the file closed.
//! # Ok::<(), std::io::Error>(())
//! ```

#![warn(missing_docs)]

pub mod sys;

use std::{
    fmt,
    fs::OpenOptions,
    io,
    mem::{size_of, ManuallyDrop},
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    path::Path,
};

/// Where the device node lives.
pub const DEVICE_PATH: &str = "/dev/moreram";

/// An open `/dev/moreram`.
#[derive(Debug)]
pub struct Moreram {
    fd: OwnedFd,
}

/// A PCI function's address, `domain:bus:device.function`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// PCI domain (segment).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number.
    pub device: u8,
    /// Function number.
    pub function: u8,
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// One bank of the tier: a bound device's memory BAR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bank {
    /// Bank number, stable while the device stays bound.
    pub index: u32,
    /// Bytes the bank manages.
    pub size: u64,
    /// Bytes not allocated.
    pub free: u64,
    /// Physical address of the BAR.
    pub bar_start: u64,
    /// Length of the BAR.
    pub bar_len: u64,
    /// BAR number on the device.
    pub bar: u8,
    /// The BAR is prefetchable.
    pub prefetchable: bool,
    /// The BAR is a 64-bit BAR.
    pub is_64bit: bool,
    /// Where the device is.
    pub pci: PciAddress,
    /// Bytes in the largest free block: the largest contiguous allocation possible now.
    pub largest_free: u64,
    /// Bytes of `free` held in processes' pools.
    pub pooled: u64,
    /// Below this much unpooled free memory, pool holders are asked to scavenge.
    pub low_watermark: u64,
    /// Below this, allocations reclaim pools at once.
    pub min_watermark: u64,
    /// PCI vendor ID.
    pub vendor: u16,
    /// PCI device ID.
    pub device: u16,
}

impl From<&sys::moreram_bank_info> for Bank {
    fn from(b: &sys::moreram_bank_info) -> Self {
        Bank {
            index: b.index,
            size: b.size,
            free: b.free,
            bar_start: b.bar_start,
            bar_len: b.bar_len,
            bar: b.bar,
            prefetchable: b.flags & sys::MORERAM_BANK_PREFETCHABLE != 0,
            is_64bit: b.flags & sys::MORERAM_BANK_64BIT != 0,
            pci: PciAddress {
                domain: b.pci_domain,
                bus: b.pci_bus,
                device: b.pci_dev,
                function: b.pci_func,
            },
            largest_free: b.largest_free,
            pooled: b.pooled,
            low_watermark: b.low_watermark,
            min_watermark: b.min_watermark,
            vendor: b.vendor,
            device: b.device,
        }
    }
}

impl Moreram {
    /// Opens `/dev/moreram`.
    pub fn open() -> io::Result<Self> {
        Self::open_path(DEVICE_PATH)
    }

    /// Opens the device node at `path`.
    pub fn open_path(path: impl AsRef<Path>) -> io::Result<Self> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Self { fd: f.into() })
    }

    /// The banks bound now, ordered by index.
    pub fn banks(&self) -> io::Result<Vec<Bank>> {
        // The number of banks can change between the two calls: retry until it holds still.
        loop {
            let mut req = sys::moreram_banks::default();
            // SAFETY: `banks_ptr` is 0 with `capacity` 0: the call only counts.
            unsafe { sys::banks(self.as_fd(), &mut req)? };
            let mut infos = vec![sys::moreram_bank_info::default(); req.count as usize];
            req.capacity = req.count;
            req.entry_size = size_of::<sys::moreram_bank_info>() as u32;
            req.banks_ptr = infos.as_mut_ptr() as u64;
            // SAFETY: `banks_ptr` has room for `capacity` entries of `entry_size` bytes.
            unsafe { sys::banks(self.as_fd(), &mut req)? };
            if req.count == req.capacity {
                return Ok(infos.iter().map(Bank::from).collect());
            }
        }
    }

    /// The tier as a whole, and this file's and this process's share of it.
    pub fn tier(&self) -> io::Result<TierUsage> {
        let mut req = sys::moreram_tier::default();
        sys::tier(self.as_fd(), &mut req)?;
        Ok(TierUsage {
            banks: req.banks,
            vram_size: req.vram_size,
            vram_free: req.vram_free,
            system_used: req.system_used,
            file_vram: req.file_vram,
            file_system: req.file_system,
            file_allocs: req.file_allocs,
            pool_vram: req.pool_vram,
            pool_system: req.pool_system,
        })
    }

    /// Allocates `size` bytes (a multiple of the page size), zeroed; with `contiguous`, in one
    /// physically contiguous block of VRAM.
    pub fn alloc(
        &self,
        size: u64,
        placement: Placement,
        contiguous: bool,
    ) -> io::Result<Allocation<'_>> {
        let (flags, bank) = placement.to_flags(contiguous);
        let mut req = sys::moreram_alloc {
            size,
            flags,
            bank,
            ..Default::default()
        };
        self.alloc_raw(&mut req)?;
        Ok(Allocation::new(
            self,
            req.handle,
            size,
            Tier::from_abi(req.tier, req.bank_used),
            req.mmap_offset,
        ))
    }

    /// `MORERAM_IOC_ALLOC` with a request as given. A handle it returns is the caller's to free
    /// ([`free_raw`](Self::free_raw)); closing the file frees it too.
    pub fn alloc_raw(&self, req: &mut sys::moreram_alloc) -> io::Result<()> {
        sys::alloc(self.as_fd(), req)
    }

    /// Imports into this file an allocation another process shared ([`Allocation::share`]).
    pub fn import(&self, token: u64) -> io::Result<Allocation<'_>> {
        let mut req = sys::moreram_import {
            token,
            ..Default::default()
        };
        sys::import(self.as_fd(), &mut req)?;
        Ok(Allocation::new(
            self,
            req.handle,
            req.size,
            Tier::from_abi(req.tier, req.bank),
            req.mmap_offset,
        ))
    }

    /// `MORERAM_IOC_FREE` of a raw handle of this file: one that no [`Allocation`] owns (from
    /// [`alloc_raw`](Self::alloc_raw) or [`Allocation::into_raw`]), or any number, to see the
    /// kernel refuse it. Freeing a handle an `Allocation` owns leaves that one with a stale
    /// handle, which the kernel may give again to a later allocation.
    pub fn free_raw(&self, handle: u32) -> io::Result<()> {
        let req = sys::moreram_handle {
            handle,
            ..Default::default()
        };
        sys::free(self.as_fd(), &req)
    }

    /// What the module knows of the allocation a handle of this file names.
    pub fn query_raw(&self, handle: u32) -> io::Result<AllocationInfo> {
        let mut req = sys::moreram_query {
            handle,
            ..Default::default()
        };
        sys::query(self.as_fd(), &mut req)?;
        let (placement, contiguous) = Placement::from_flags(req.flags, req.bank);
        Ok(AllocationInfo {
            size: req.size,
            tier: Tier::from_abi(req.tier, req.bank),
            placement,
            contiguous,
            mmap_offset: req.mmap_offset,
            mappings: req.mappings,
        })
    }

    /// Owner, writers and readers of bytes `[offset, offset + length)` of the allocation a handle
    /// of this file names.
    pub fn rights_raw(&self, handle: u32, offset: u64, length: u64) -> io::Result<Rights> {
        const CAP: u32 = 64;
        let mut writers = vec![0i32; CAP as usize];
        let mut readers = vec![0i32; CAP as usize];
        let mut req = sys::moreram_rights {
            handle,
            offset,
            length,
            writers_cap: CAP,
            writers_ptr: writers.as_mut_ptr() as u64,
            readers_cap: CAP,
            readers_ptr: readers.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: both arrays have room for their caps, and nothing else uses them.
        unsafe { sys::rights(self.as_fd(), &mut req) }?;
        writers.truncate(req.nwriters.min(CAP) as usize);
        readers.truncate(req.nreaders.min(CAP) as usize);
        Ok(Rights {
            owner: req.owner,
            writers,
            readers,
            caller: Access::from_abi(req.caller),
            mixed: req.flags & sys::MORERAM_RIGHTS_MIXED != 0,
        })
    }

    /// `mmap(NULL, len, prot, flags, fd, offset)`: a mapping at any offset of this file, with any
    /// protection and flags.
    pub fn map_raw(&self, offset: u64, len: usize, prot: i32, flags: i32) -> io::Result<Mapping> {
        // SAFETY: a fresh mapping at an address the kernel picks; nothing is overwritten.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                flags,
                self.fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr: p.cast(), len })
    }

    /// Bytes owned per process, over the whole tier.
    pub fn procs(&self) -> io::Result<Vec<ProcUse>> {
        loop {
            let mut req = sys::moreram_procs::default();
            // SAFETY: `procs_ptr` is 0 with `capacity` 0: the call only counts.
            unsafe { sys::procs(self.as_fd(), &mut req) }?;
            let mut v = vec![sys::moreram_proc_info::default(); req.count as usize];
            req = sys::moreram_procs {
                capacity: v.len() as u32,
                entry_size: size_of::<sys::moreram_proc_info>() as u32,
                procs_ptr: v.as_mut_ptr() as u64,
                ..Default::default()
            };
            // SAFETY: `procs_ptr` has room for `capacity` entries of `entry_size` bytes.
            unsafe { sys::procs(self.as_fd(), &mut req) }?;
            if req.count == req.capacity {
                return Ok(v
                    .iter()
                    .map(|p| ProcUse {
                        pid: p.pid,
                        vram: p.vram,
                        system: p.system,
                    })
                    .collect());
            }
        }
    }
}

/// Where an allocation may be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// VRAM if there is room in any bank, else system pages (the default).
    PreferVram,
    /// VRAM or fail with `ENOSPC`.
    VramOnly,
    /// System pages only.
    SystemOnly,
    /// VRAM from this bank only.
    Bank(u32),
}

impl Placement {
    /// `(flags, bank)` of `struct moreram_alloc`.
    fn to_flags(self, contiguous: bool) -> (u32, u32) {
        let (flags, bank) = match self {
            Placement::PreferVram => (0, 0),
            Placement::VramOnly => (sys::MORERAM_ALLOC_VRAM_ONLY, 0),
            Placement::SystemOnly => (sys::MORERAM_ALLOC_SYSTEM_ONLY, 0),
            Placement::Bank(b) => (sys::MORERAM_ALLOC_BANK, b),
        };
        let contiguous = if contiguous {
            sys::MORERAM_ALLOC_CONTIGUOUS
        } else {
            0
        };
        (flags | contiguous, bank)
    }

    /// The placement and contiguity an allocation was made with, from the flags and bank that
    /// `MORERAM_IOC_QUERY` reports.
    fn from_flags(flags: u32, bank: u32) -> (Placement, bool) {
        let placement = if flags & sys::MORERAM_ALLOC_BANK != 0 {
            Placement::Bank(bank)
        } else if flags & sys::MORERAM_ALLOC_VRAM_ONLY != 0 {
            Placement::VramOnly
        } else if flags & sys::MORERAM_ALLOC_SYSTEM_ONLY != 0 {
            Placement::SystemOnly
        } else {
            Placement::PreferVram
        };
        (placement, flags & sys::MORERAM_ALLOC_CONTIGUOUS != 0)
    }
}

/// The tier an allocation got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Device memory, in the given bank.
    Vram(u32),
    /// Ordinary system pages.
    System,
}

impl Tier {
    /// From a `MORERAM_TIER_*` and the bank reported with it.
    fn from_abi(tier: u32, bank: u32) -> Tier {
        if tier == sys::MORERAM_TIER_VRAM {
            Tier::Vram(bank)
        } else {
            Tier::System
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tier::Vram(b) => write!(f, "vram (bank {b})"),
            Tier::System => write!(f, "system"),
        }
    }
}

/// The tier as a whole, and one file's and one process's share of it ([`Moreram::tier`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierUsage {
    /// Banks bound now.
    pub banks: u32,
    /// Bytes in all banks.
    pub vram_size: u64,
    /// Bytes free in all banks.
    pub vram_free: u64,
    /// Bytes of system-page allocations, all files.
    pub system_used: u64,
    /// Bytes of VRAM allocated through this file.
    pub file_vram: u64,
    /// Bytes of system pages allocated through this file.
    pub file_system: u64,
    /// Live handles of this file.
    pub file_allocs: u32,
    /// Bytes of VRAM in the calling process's pool.
    pub pool_vram: u64,
    /// Bytes of system pages in the calling process's pool.
    pub pool_system: u64,
}

/// Memory allocated through a [`Moreram`] file ([`Moreram::alloc`], [`Moreram::import`]): a
/// handle of that file, freed (`MORERAM_IOC_FREE`) when dropped.
///
/// Freeing takes no memory from under a mapping: pages stay until their last mapping goes.
/// Closing the file frees what is left, so the borrow keeps the file open.
///
/// After `fork()`, a child has copies of the parent's `Allocation`s but shares the file, and so
/// the handles, with the parent: dropping an `Allocation` in any other process than the one that
/// made it does nothing. [`free`](Self::free) frees from any process.
#[must_use = "dropping an Allocation frees it"]
#[derive(Debug)]
pub struct Allocation<'f> {
    file: &'f Moreram,
    handle: u32,
    size: u64,
    tier: Tier,
    mmap_offset: u64,
    /// The process that made it: the one whose drop frees it.
    pid: u32,
}

impl<'f> Allocation<'f> {
    fn new(file: &'f Moreram, handle: u32, size: u64, tier: Tier, mmap_offset: u64) -> Self {
        Allocation {
            file,
            handle,
            size,
            tier,
            mmap_offset,
            pid: std::process::id(),
        }
    }

    /// The handle: names the allocation in its file; never 0.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// Bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where it lives.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The offset to pass to `mmap` on its file.
    pub fn mmap_offset(&self) -> u64 {
        self.mmap_offset
    }

    /// The file it was made through.
    pub fn file(&self) -> &'f Moreram {
        self.file
    }

    /// Maps the whole allocation, shared and read-write.
    pub fn map(&self) -> io::Result<Mapping> {
        self.file.map_raw(
            self.mmap_offset,
            self.size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
        )
    }

    /// What the module knows of it now.
    pub fn query(&self) -> io::Result<AllocationInfo> {
        self.file.query_raw(self.handle)
    }

    /// Lets another process import it ([`Moreram::import`]): any process of the caller's user
    /// that knows the token, or, with `named`, only that process (of any user). Returns the token.
    pub fn share(&self, named: Option<i32>) -> io::Result<u64> {
        let mut req = sys::moreram_share {
            handle: self.handle,
            flags: if named.is_some() {
                sys::MORERAM_SHARE_NAMED
            } else {
                0
            },
            pid: named.unwrap_or(0),
            ..Default::default()
        };
        sys::share(self.file.as_fd(), &mut req)?;
        Ok(req.token)
    }

    /// Changes the rights on bytes `[offset, offset + length)` (page aligned), as 3DO's
    /// `ControlMem`.
    pub fn control(&self, cmd: Control, offset: u64, length: u64) -> io::Result<()> {
        let (cmd, pid) = match cmd {
            Control::GrantWrite(pid) => (sys::MORERAM_CTL_GRANT_WRITE, pid),
            Control::RevokeWrite(pid) => (sys::MORERAM_CTL_REVOKE_WRITE, pid),
            Control::RevokeWriteAll => (sys::MORERAM_CTL_REVOKE_WRITE, 0),
            Control::Give(pid) => (sys::MORERAM_CTL_GIVE, pid),
        };
        let req = sys::moreram_control {
            handle: self.handle,
            cmd,
            offset,
            length,
            pid,
            ..Default::default()
        };
        sys::control(self.file.as_fd(), &req)
    }

    /// Owner, writers and readers of bytes `[offset, offset + length)`.
    pub fn rights(&self, offset: u64, length: u64) -> io::Result<Rights> {
        self.file.rights_raw(self.handle, offset, length)
    }

    /// Frees it now, and says whether the module agreed (dropping it frees it too, silently).
    pub fn free(self) -> io::Result<()> {
        let this = ManuallyDrop::new(self);
        this.file.free_raw(this.handle)
    }

    /// Lets go of it without freeing it, and returns its handle: it stays allocated until
    /// [`Moreram::free_raw`] or until its file is closed.
    pub fn into_raw(self) -> u32 {
        ManuallyDrop::new(self).handle
    }
}

impl Drop for Allocation<'_> {
    fn drop(&mut self) {
        if std::process::id() == self.pid {
            // Nobody to tell of an error here; `free` reports it.
            let _ = self.file.free_raw(self.handle);
        }
    }
}

/// What the module reports of an allocation ([`Allocation::query`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocationInfo {
    /// Bytes.
    pub size: u64,
    /// Where it lives.
    pub tier: Tier,
    /// The placement it was allocated with.
    pub placement: Placement,
    /// It was allocated contiguous.
    pub contiguous: bool,
    /// The offset to pass to `mmap` on its file.
    pub mmap_offset: u64,
    /// Mappings (VMAs) of it in any process now.
    pub mappings: u32,
}

/// A shared mapping of an allocation; unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a `Mapping` owns its range of the address space as a `Box<[u8]>` owns its bytes: it may
// be unmapped from any thread, and it hands out `&mut [u8]` only through `&mut self`.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&self` gives out only shared access.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The mapped bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` maps `len` writable bytes until drop, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// The start address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (it never is).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` is a mapping we made and nobody else unmaps.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// A change of rights on pages ([`Allocation::control`]). Processes are named by thread-group id,
/// as `getpid()` returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Let the process write the pages.
    GrantWrite(i32),
    /// Take write access back from the process (a writer may take back its own).
    RevokeWrite(i32),
    /// Take write access back from every writer but the owner.
    RevokeWriteAll,
    /// Make the process the owner of the pages.
    Give(i32),
}

/// Rights on pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// May read.
    pub read: bool,
    /// May write.
    pub write: bool,
    /// Owns them.
    pub owner: bool,
}

impl Access {
    /// From `MORERAM_RIGHT_*` bits.
    fn from_abi(bits: u32) -> Access {
        Access {
            read: bits & sys::MORERAM_RIGHT_READ != 0,
            write: bits & sys::MORERAM_RIGHT_WRITE != 0,
            owner: bits & sys::MORERAM_RIGHT_OWNER != 0,
        }
    }
}

/// Who may do what with pages ([`Allocation::rights`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    /// Owner of the first page; 0 when it has none.
    pub owner: i32,
    /// Writers of the first page besides the owner.
    pub writers: Vec<i32>,
    /// Processes the allocation was shared with by name.
    pub readers: Vec<i32>,
    /// What the caller may do on every page of the range.
    pub caller: Access,
    /// The pages of the range differ in owner or writers.
    pub mixed: bool,
}

/// Per-process use of the tier (see [`Moreram::procs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcUse {
    /// Thread-group id.
    pub pid: i32,
    /// Bytes of VRAM it owns.
    pub vram: u64,
    /// Bytes of system pages it owns.
    pub system: u64,
}

/// A request from the kernel to give back pool memory (see [`Moreram::read_event`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScavengeRequest {
    /// The bank that runs low.
    pub bank: u32,
    /// Bytes of the process's pool in that bank.
    pub bytes: u64,
    /// `CLOCK_MONOTONIC` nanoseconds after which the kernel reclaims them.
    pub deadline_ns: u64,
}

impl Moreram {
    /// Moves `size` bytes of `bank`'s free VRAM into the calling process's pool.
    pub fn reserve_vram(&self, bank: u32, size: u64) -> io::Result<()> {
        let req = sys::moreram_reserve {
            size,
            bank,
            ..Default::default()
        };
        sys::reserve(self.as_fd(), &req)
    }

    /// Puts `size` bytes of system pages into the calling process's pool.
    pub fn reserve_system(&self, size: u64) -> io::Result<()> {
        let req = sys::moreram_reserve {
            size,
            flags: sys::MORERAM_RESERVE_SYSTEM,
            ..Default::default()
        };
        sys::reserve(self.as_fd(), &req)
    }

    /// Gives back every unused page of the calling process's pool: `(vram, system)` bytes.
    pub fn scavenge(&self) -> io::Result<(u64, u64)> {
        let mut req = sys::moreram_scavenge::default();
        sys::scavenge(self.as_fd(), &mut req)?;
        Ok((req.vram, req.system))
    }

    /// Asks for `signal` (0: none) with every scavenge request.
    pub fn notify_signal(&self, signal: i32) -> io::Result<()> {
        let req = sys::moreram_notify {
            signal: signal as u32,
            ..Default::default()
        };
        sys::notify(self.as_fd(), &req)
    }

    /// The next scavenge request; blocks unless the file is non-blocking (`EAGAIN` then).
    pub fn read_event(&self) -> io::Result<ScavengeRequest> {
        let mut ev = sys::moreram_event::default();
        sys::read_event(self.as_fd(), &mut ev)?;
        Ok(ScavengeRequest {
            bank: ev.bank,
            bytes: ev.bytes,
            deadline_ns: ev.deadline_ns,
        })
    }
}

impl AsFd for Moreram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Formats a byte count with a binary unit: `256 MiB`, `1.5 GiB`, `4 KiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut scaled = bytes as f64;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 || scaled.fract() == 0.0 {
        format!("{} {}", scaled as u64, UNITS[unit])
    } else {
        format!("{:.1} {}", scaled, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(256 << 20), "256 MiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
        assert_eq!(human_size(1023), "1023 B");
    }

    #[test]
    fn pci_address_display() {
        let a = PciAddress {
            domain: 0,
            bus: 0,
            device: 3,
            function: 0,
        };
        assert_eq!(a.to_string(), "0000:00:03.0");
    }

    #[test]
    fn placement_survives_the_abi() {
        for p in [
            Placement::PreferVram,
            Placement::VramOnly,
            Placement::SystemOnly,
            Placement::Bank(3),
        ] {
            for contiguous in [false, true] {
                let (flags, bank) = p.to_flags(contiguous);
                assert_eq!(flags & !sys::MORERAM_ALLOC_FLAGS_ALL, 0, "{p:?}");
                assert_eq!(Placement::from_flags(flags, bank), (p, contiguous));
            }
        }
    }

    #[test]
    fn ioctl_number_matches_asm_generic_encoding() {
        // _IOWR(0xB9, 0, 40 bytes): dir 3, size 40, type 0xB9, nr 0.
        assert_eq!(sys::MORERAM_IOC_BANKS, 0xc028_b900);
    }
}
