//! Tests of the bank report (`MORERAM_IOC_BANKS`) and of the device node.

use crate::{check, expect_errno, Expected, Test, TestResult};
use moreram::{sys, Bank, Moreram};
use std::{
    io,
    os::{fd::AsFd, unix::process::CommandExt},
    process::{Command, ExitCode},
};

/// The tests of this file. `recheck` looks at the banks after each area of tests, `count` after
/// an unbind (`--banks N`), `reload` after the module is loaded again.
pub const TESTS: &[Test] = &[
    Test::new("bank-count", &["count", "recheck", "reload"], |c| {
        count(c.banks)
    }),
    Test::new("banks-report", &["banks", "recheck", "reload"], |c| {
        banks_report(&c.expected)
    }),
    Test::new("banks-bad-input", &["banks"], |_| banks_bad_input()),
    Test::new("dev-access", &["banks"], |_| dev_access()),
];

fn open() -> Result<Moreram, String> {
    Moreram::open().map_err(|e| format!("open {}: {e}", moreram::DEVICE_PATH))
}

/// Exactly `n` banks are bound, numbered 0..n without gaps or repeats.
pub fn count(n: usize) -> TestResult {
    let banks = open()?.banks().map_err(|e| format!("BANKS: {e}"))?;
    check!(
        banks.len() == n,
        "{} banks, expected {n}: {banks:?}",
        banks.len()
    );
    let mut idx: Vec<u32> = banks.iter().map(|b| b.index).collect();
    idx.sort();
    idx.dedup();
    check!(idx.len() == n, "bank indexes repeat: {banks:?}");
    Ok(())
}

/// The `resource` file of a PCI device in sysfs: one `start end flags` line per resource.
fn sysfs_resource(b: &Bank) -> Result<(u64, u64, u64), String> {
    let path = format!("/sys/bus/pci/devices/{}/resource", b.pci);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let line = text
        .lines()
        .nth(b.bar as usize)
        .ok_or(format!("{path}: no BAR {}", b.bar))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|x| u64::from_str_radix(x.trim_start_matches("0x"), 16).unwrap_or(u64::MAX))
        .collect();
    check!(f.len() == 3, "{path}: odd line {line:?}");
    Ok((f[0], f[1], f[2]))
}

/// The report names every device the VM was given, with the BAR, size, address and flags that
/// the PCI core reports through sysfs (an independent path), and nothing else.
fn banks_report(expected: &[Expected]) -> TestResult {
    let banks = open()?.banks().map_err(|e| format!("BANKS: {e}"))?;
    check!(
        banks.len() == expected.len(),
        "{} banks, the VM has {}: {banks:?}",
        banks.len(),
        expected.len()
    );
    for e in expected {
        let b = banks
            .iter()
            .find(|b| b.vendor == e.vendor && b.device == e.device)
            .ok_or(format!("no bank for {:04x}:{:04x}", e.vendor, e.device))?;
        check!(
            b.bar == e.bar,
            "{:04x}:{:04x}: BAR {}, expected {}",
            e.vendor,
            e.device,
            b.bar,
            e.bar
        );
        check!(
            b.size == e.size,
            "bank {}: size {}, expected {}",
            b.index,
            b.size,
            e.size
        );
        check!(
            b.bar_len == e.size,
            "bank {}: bar_len {}",
            b.index,
            b.bar_len
        );
        check!(
            b.free == b.size,
            "bank {}: {} free of {} with nothing allocated",
            b.index,
            b.free,
            b.size
        );
        let (start, end, flags) = sysfs_resource(b)?;
        check!(
            b.bar_start == start,
            "bank {}: BAR at {:#x}, sysfs says {start:#x}",
            b.index,
            b.bar_start
        );
        check!(
            end - start + 1 == b.bar_len,
            "bank {}: sysfs length differs",
            b.index
        );
        const IORESOURCE_PREFETCH: u64 = 0x2000;
        const IORESOURCE_MEM_64: u64 = 0x0010_0000;
        check!(
            b.prefetchable == (flags & IORESOURCE_PREFETCH != 0),
            "bank {}: prefetchable {}, sysfs flags {flags:#x}",
            b.index,
            b.prefetchable
        );
        check!(
            b.is_64bit == (flags & IORESOURCE_MEM_64 != 0),
            "bank {}: 64-bit {}, sysfs flags {flags:#x}",
            b.index,
            b.is_64bit
        );
    }
    count(expected.len())
}

fn banks_ioctl(mr: &Moreram, req: &mut sys::moreram_banks) -> io::Result<()> {
    // SAFETY: the pointers inside `req` are the test's subject and the kernel must check them;
    // they are 0, unmapped, or point into the test's buffer, with room for what is asked.
    unsafe { sys::banks(mr.as_fd(), req) }
}

/// Every malformed request gets its documented errno, and entries are written exactly as the
/// caller sized them.
fn banks_bad_input() -> TestResult {
    let mr = open()?;
    let n = mr.banks().map_err(|e| e.to_string())?.len();
    check!(n >= 2, "needs two banks, found {n}");
    let v1 = sys::MORERAM_BANK_INFO_SIZE_V1;

    // Capacity 0: just the count, nothing written through a NULL pointer.
    let mut req = sys::moreram_banks::default();
    banks_ioctl(&mr, &mut req).map_err(|e| format!("count only: {e}"))?;
    check!(req.count as usize == n, "count {} != {n}", req.count);

    let mut bad = sys::moreram_banks {
        reserved0: 1,
        ..Default::default()
    };
    expect_errno("reserved0 set", banks_ioctl(&mr, &mut bad), libc::EINVAL)?;
    let mut bad = sys::moreram_banks {
        reserved: [0, 1],
        ..Default::default()
    };
    expect_errno("reserved[1] set", banks_ioctl(&mr, &mut bad), libc::EINVAL)?;

    let mut buf = vec![0xffu8; 4 * 4096];
    let ptr = buf.as_mut_ptr() as u64;
    let mut small = sys::moreram_banks {
        capacity: 1,
        entry_size: v1 - 8,
        banks_ptr: ptr,
        ..Default::default()
    };
    expect_errno(
        "entry_size below v1",
        banks_ioctl(&mr, &mut small),
        libc::EINVAL,
    )?;
    let mut huge = sys::moreram_banks {
        capacity: 1,
        entry_size: 4097,
        banks_ptr: ptr,
        ..Default::default()
    };
    expect_errno(
        "entry_size above 4096",
        banks_ioctl(&mr, &mut huge),
        libc::EINVAL,
    )?;
    let mut wild = sys::moreram_banks {
        capacity: 2,
        entry_size: v1,
        banks_ptr: 8,
        ..Default::default()
    };
    expect_errno(
        "banks_ptr unmapped",
        banks_ioctl(&mr, &mut wild),
        libc::EFAULT,
    )?;
    // SAFETY: a NULL argument is the point of this check; the kernel must not dereference it.
    let r = unsafe {
        sys::ioctl::<sys::moreram_banks>(mr.as_fd(), sys::MORERAM_IOC_BANKS, std::ptr::null_mut())
    };
    expect_errno("NULL argument", r, libc::EFAULT)?;
    let mut unused = sys::moreram_banks::default();
    // SAFETY: an unknown command number; the kernel must refuse it without touching `unused`.
    let r = unsafe {
        sys::ioctl(
            mr.as_fd(),
            libc::_IOWR::<sys::moreram_banks>(sys::MORERAM_IOC_MAGIC, 0x7f) as u32,
            &mut unused,
        )
    };
    expect_errno("unknown command", r, libc::ENOTTY)?;

    // A newer caller's larger entries: known bytes first, then zeros, nothing past the last.
    let entry = 128usize;
    let mut req = sys::moreram_banks {
        capacity: 1,
        entry_size: entry as u32,
        banks_ptr: ptr,
        ..Default::default()
    };
    banks_ioctl(&mr, &mut req).map_err(|e| format!("entry_size 128: {e}"))?;
    check!(
        req.count as usize == n,
        "count {} != {n} with capacity 1",
        req.count
    );
    check!(
        buf[v1 as usize..entry].iter().all(|&b| b == 0),
        "the tail of a 128-byte entry is not zeroed"
    );
    check!(
        buf[entry..].iter().all(|&b| b == 0xff),
        "wrote past capacity * entry_size"
    );
    // SAFETY: the buffer holds at least one `moreram_bank_info`, written by the kernel just above;
    // `read_unaligned` does not care about the Vec<u8>'s alignment.
    let first: sys::moreram_bank_info = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
    let banks = mr.banks().map_err(|e| e.to_string())?;
    check!(
        Bank::from(&first) == banks[0],
        "entry 0 differs: {first:?} vs {:?}",
        banks[0]
    );
    check!(first.reserved0 == 0, "reserved output fields not zero");
    Ok(())
}

/// `/dev/moreram` is a character device every user may open: access control is the ownership
/// model's job, not the file mode's.
fn dev_access() -> TestResult {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let md = std::fs::metadata(moreram::DEVICE_PATH).map_err(|e| e.to_string())?;
    check!(
        md.file_type().is_char_device(),
        "{} is not a character device",
        moreram::DEVICE_PATH
    );
    check!(
        md.permissions().mode() & 0o777 == 0o666,
        "mode {:o}, expected 666",
        md.permissions().mode() & 0o777
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let st = Command::new(exe)
        .args(["--child", "open-banks"])
        .uid(65534)
        .gid(65534)
        .status()
        .map_err(|e| e.to_string())?;
    check!(
        st.success(),
        "user 65534 could not open {} and list banks: {st}",
        moreram::DEVICE_PATH
    );
    Ok(())
}

/// The child half of tests that run as another user or process.
pub fn child(what: Option<&str>) -> ExitCode {
    match what {
        Some("open-banks") => match Moreram::open().and_then(|m| m.banks()) {
            // SAFETY: getuid has no preconditions.
            Ok(b) if !b.is_empty() && unsafe { libc::getuid() } == 65534 => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(2),
            Err(e) => {
                eprintln!("child: {e}");
                ExitCode::FAILURE
            }
        },
        _ => ExitCode::from(64),
    }
}
