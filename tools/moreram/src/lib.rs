//! User-space access to `/dev/moreram`: GPU memory, seen through a PCI BAR, as a memory tier.
//!
//! ```no_run
//! let mr = moreram::Moreram::open()?;
//! for bank in mr.banks()? {
//!     println!("bank {}: {} MiB", bank.index, bank.size >> 20);
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

#![warn(missing_docs)]

pub mod sys;

use std::{
    fmt,
    fs::OpenOptions,
    io,
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

/// Issues `ioctl(fd, cmd, arg)` and maps -1 to the errno.
///
/// # Safety
///
/// `arg` must point to a value of the type `cmd` expects, valid for reads and writes.
pub unsafe fn ioctl<T>(fd: BorrowedFd<'_>, cmd: u32, arg: *mut T) -> io::Result<i32> {
    // SAFETY: the caller guarantees `arg` matches `cmd`; `fd` is open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
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
            // SAFETY: `req` is a `moreram_banks`, as MORERAM_IOC_BANKS expects.
            unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_BANKS, &mut req)? };
            let mut infos = vec![sys::moreram_bank_info::default(); req.count as usize];
            req.capacity = req.count;
            req.entry_size = std::mem::size_of::<sys::moreram_bank_info>() as u32;
            req.banks_ptr = infos.as_mut_ptr() as u64;
            // SAFETY: as above; `banks_ptr` has room for `capacity` entries of `entry_size`.
            unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_BANKS, &mut req)? };
            if req.count == req.capacity {
                return Ok(infos.iter().map(Bank::from).collect());
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

/// The tier an allocation got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Device memory, in the given bank.
    Vram(u32),
    /// Ordinary system pages.
    System,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tier::Vram(b) => write!(f, "vram (bank {b})"),
            Tier::System => write!(f, "system"),
        }
    }
}

/// An allocation made through [`Moreram::alloc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Names the allocation in the file that made it.
    pub handle: u32,
    /// Bytes.
    pub size: u64,
    /// Where it lives.
    pub tier: Tier,
    /// The offset to pass to `mmap` on the same file.
    pub mmap_offset: u64,
}

/// A shared, read-write mapping of an allocation; unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

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

impl Moreram {
    /// Allocates `size` bytes (a multiple of the page size), zeroed.
    pub fn alloc(
        &self,
        size: u64,
        placement: Placement,
        contiguous: bool,
    ) -> io::Result<Allocation> {
        let (flags, bank) = match placement {
            Placement::PreferVram => (0, 0),
            Placement::VramOnly => (sys::MORERAM_ALLOC_VRAM_ONLY, 0),
            Placement::SystemOnly => (sys::MORERAM_ALLOC_SYSTEM_ONLY, 0),
            Placement::Bank(b) => (sys::MORERAM_ALLOC_BANK, b),
        };
        let flags = flags
            | if contiguous {
                sys::MORERAM_ALLOC_CONTIGUOUS
            } else {
                0
            };
        let mut req = sys::moreram_alloc {
            size,
            flags,
            bank,
            ..Default::default()
        };
        self.alloc_raw(&mut req)?;
        Ok(Allocation {
            handle: req.handle,
            size,
            tier: if req.tier == sys::MORERAM_TIER_VRAM {
                Tier::Vram(req.bank_used)
            } else {
                Tier::System
            },
            mmap_offset: req.mmap_offset,
        })
    }

    /// `MORERAM_IOC_ALLOC` with a request as given.
    pub fn alloc_raw(&self, req: &mut sys::moreram_alloc) -> io::Result<()> {
        // SAFETY: `req` is a `moreram_alloc`, as the command expects.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_ALLOC, req) }.map(drop)
    }

    /// Frees an allocation; its memory goes when the last mapping of it does.
    pub fn free(&self, handle: u32) -> io::Result<()> {
        let mut req = sys::moreram_handle {
            handle,
            ..Default::default()
        };
        // SAFETY: `req` is a `moreram_handle`, as the command expects.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_FREE, &mut req) }.map(drop)
    }

    /// What the module knows of an allocation.
    pub fn query(&self, handle: u32) -> io::Result<sys::moreram_query> {
        let mut req = sys::moreram_query {
            handle,
            ..Default::default()
        };
        // SAFETY: `req` is a `moreram_query`, as the command expects.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_QUERY, &mut req) }?;
        Ok(req)
    }

    /// The tier as a whole, and this file's share of it.
    pub fn tier(&self) -> io::Result<sys::moreram_tier> {
        let mut req = sys::moreram_tier::default();
        // SAFETY: `req` is a `moreram_tier`, as the command expects.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_TIER, &mut req) }?;
        Ok(req)
    }

    /// Maps the whole allocation, shared and read-write.
    pub fn map(&self, a: &Allocation) -> io::Result<Mapping> {
        self.map_raw(
            a.mmap_offset,
            a.size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
        )
    }

    /// `mmap(NULL, len, prot, flags, fd, offset)`.
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
}

/// What a process may do with pages (see [`Moreram::rights`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    /// Owner of the first page; 0 when it has none.
    pub owner: i32,
    /// Writers of the first page besides the owner.
    pub writers: Vec<i32>,
    /// Processes the allocation was shared with by name.
    pub readers: Vec<i32>,
    /// `MORERAM_RIGHT_*` the caller holds on every page of the range.
    pub caller: u32,
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

impl Moreram {
    /// Lets another process import `handle`: any process of the caller's user that knows the
    /// token, or, with `named`, only that process (of any user). Returns the token.
    pub fn share(&self, handle: u32, named: Option<i32>) -> io::Result<u64> {
        let mut req = sys::moreram_share {
            handle,
            flags: if named.is_some() {
                sys::MORERAM_SHARE_NAMED
            } else {
                0
            },
            pid: named.unwrap_or(0),
            ..Default::default()
        };
        // SAFETY: `req` is a `moreram_share`.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_SHARE, &mut req) }?;
        Ok(req.token)
    }

    /// Imports a shared allocation into this file.
    pub fn import(&self, token: u64) -> io::Result<Allocation> {
        let mut req = sys::moreram_import {
            token,
            ..Default::default()
        };
        // SAFETY: `req` is a `moreram_import`.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_IMPORT, &mut req) }?;
        Ok(Allocation {
            handle: req.handle,
            size: req.size,
            tier: if req.tier == sys::MORERAM_TIER_VRAM {
                Tier::Vram(req.bank)
            } else {
                Tier::System
            },
            mmap_offset: req.mmap_offset,
        })
    }

    /// `MORERAM_IOC_CONTROL`: `cmd` (`MORERAM_CTL_*`) on bytes `[offset, offset + length)`.
    pub fn control(
        &self,
        handle: u32,
        cmd: u32,
        offset: u64,
        length: u64,
        pid: i32,
    ) -> io::Result<()> {
        let mut req = sys::moreram_control {
            handle,
            cmd,
            offset,
            length,
            pid,
            ..Default::default()
        };
        // SAFETY: `req` is a `moreram_control`.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_CONTROL, &mut req) }.map(drop)
    }

    /// Owner, writers and readers of bytes `[offset, offset + length)` of an allocation.
    pub fn rights(&self, handle: u32, offset: u64, length: u64) -> io::Result<Rights> {
        let mut writers = vec![0i32; 64];
        let mut readers = vec![0i32; 64];
        let mut req = sys::moreram_rights {
            handle,
            offset,
            length,
            writers_cap: 64,
            writers_ptr: writers.as_mut_ptr() as u64,
            readers_cap: 64,
            readers_ptr: readers.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: `req` is a `moreram_rights`, its arrays have room for their caps.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_RIGHTS, &mut req) }?;
        writers.truncate(req.nwriters.min(64) as usize);
        readers.truncate(req.nreaders.min(64) as usize);
        Ok(Rights {
            owner: req.owner,
            writers,
            readers,
            caller: req.caller,
            mixed: req.flags & sys::MORERAM_RIGHTS_MIXED != 0,
        })
    }

    /// Bytes owned per process, over the whole tier.
    pub fn procs(&self) -> io::Result<Vec<ProcUse>> {
        loop {
            let mut req = sys::moreram_procs::default();
            // SAFETY: `req` is a `moreram_procs`.
            unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_PROCS, &mut req) }?;
            let mut v = vec![sys::moreram_proc_info::default(); req.count as usize];
            req = sys::moreram_procs {
                capacity: v.len() as u32,
                entry_size: std::mem::size_of::<sys::moreram_proc_info>() as u32,
                procs_ptr: v.as_mut_ptr() as u64,
                ..Default::default()
            };
            // SAFETY: as above, with room for `capacity` entries.
            unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_PROCS, &mut req) }?;
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
        let mut req = sys::moreram_reserve {
            size,
            bank,
            ..Default::default()
        };
        // SAFETY: `req` is a `moreram_reserve`.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_RESERVE, &mut req) }.map(drop)
    }

    /// Puts `size` bytes of system pages into the calling process's pool.
    pub fn reserve_system(&self, size: u64) -> io::Result<()> {
        let mut req = sys::moreram_reserve {
            size,
            flags: sys::MORERAM_RESERVE_SYSTEM,
            ..Default::default()
        };
        // SAFETY: `req` is a `moreram_reserve`.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_RESERVE, &mut req) }.map(drop)
    }

    /// Gives back every unused page of the calling process's pool: `(vram, system)` bytes.
    pub fn scavenge(&self) -> io::Result<(u64, u64)> {
        let mut req = sys::moreram_scavenge::default();
        // SAFETY: `req` is a `moreram_scavenge`.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_SCAVENGE, &mut req) }?;
        Ok((req.vram, req.system))
    }

    /// Asks for `signal` (0: none) with every scavenge request.
    pub fn notify_signal(&self, signal: i32) -> io::Result<()> {
        let mut req = sys::moreram_notify {
            signal: signal as u32,
            ..Default::default()
        };
        // SAFETY: `req` is a `moreram_notify`.
        unsafe { ioctl(self.fd.as_fd(), sys::MORERAM_IOC_NOTIFY, &mut req) }.map(drop)
    }

    /// The next scavenge request; blocks unless the file is non-blocking (`EAGAIN` then).
    pub fn read_event(&self) -> io::Result<ScavengeRequest> {
        let mut ev = sys::moreram_event::default();
        // SAFETY: reads at most `size_of(ev)` bytes into `ev`.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut ev as *mut sys::moreram_event).cast(),
                std::mem::size_of_val(&ev),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
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
    fn ioctl_number_matches_asm_generic_encoding() {
        // _IOWR(0xB9, 0, 40 bytes): dir 3, size 40, type 0xB9, nr 0.
        assert_eq!(sys::MORERAM_IOC_BANKS, 0xc028_b900);
    }
}
