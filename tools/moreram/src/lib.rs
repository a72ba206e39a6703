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
