// SPDX-License-Identifier: GPL-2.0

//! `moreram/` in debugfs: bank histograms, processes and pools, and memdebug after the 3DO's.
//! It reads the layers through their public interfaces and changes nothing but memdebug.
//!
//! - `banks`: per bank, its place, sizes, fragmentation and free blocks by size;
//! - `processes`: every open file, its handles, their rights and mappings; every pool;
//! - `memdebug` (read-write, `0`/`1`), `poison_errors`, `leaks`: the switches and counters of
//!   `memdebug.rs`;
//! - `poke` (write-only, "BANK OFFSET VALUE"): writes a word into a bank behind everybody's back,
//!   to test that memdebug notices;
//! - `fail_alloc/`, `fail_release/`: the kernel's fault-injection attributes for allocations
//!   and for partial releases of VRAM (made by the shim).

use kernel::{
    debugfs::Scope,
    fmt,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::Arc,
    uaccess::UserSliceReader,
};

use crate::{front::Tier, shim, uapi};

/// The directory and its files; removed on drop.
pub(crate) type Debugfs = Scope<Arc<Tier>>;

/// Creates `moreram/` in debugfs for `tier`.
pub(crate) fn create(tier: Arc<Tier>) -> impl PinInit<Debugfs, Error> {
    Scope::dir(Ok::<_, Error>(tier), c"moreram", |tier, dir| {
        dir.read_callback_file(c"banks", tier, &banks);
        dir.read_callback_file(c"processes", tier, &processes);
        dir.read_write_callback_file(c"memdebug", tier, &memdebug, &set_memdebug);
        dir.read_callback_file(c"poison_errors", tier, &poison_errors);
        dir.read_callback_file(c"leaks", tier, &leaks);
        dir.write_only_callback_file(c"poke", tier, &poke);
        // SAFETY: the name is a NUL-terminated static string; the directory was just made.
        unsafe { shim::moreram_fail_alloc_debugfs(c"moreram".as_char_ptr()) };
    })
}

/// Writes `bytes` with a binary unit.
fn size(f: &mut fmt::Formatter<'_>, bytes: u64) -> fmt::Result {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        write!(f, "{} MiB", bytes >> 20)
    } else {
        write!(f, "{} KiB", bytes >> 10)
    }
}

/// `moreram/banks`.
fn banks(tier: &Arc<Tier>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Ok(banks) = tier.banks.snapshot() else {
        return Ok(());
    };
    for b in banks.iter() {
        let id = b.identity();
        let (hist, largest) = b.free_blocks();
        let free = b.free();
        writeln!(
            f,
            "bank {} {:04x}:{:02x}:{:02x}.{} {:04x}:{:04x} BAR {}",
            b.index(),
            id.location.domain,
            id.location.bus,
            id.location.devfn >> 3,
            id.location.devfn & 7,
            id.vendor,
            id.device,
            id.bar.bar
        )?;
        writeln!(
            f,
            "  size {} free {} largest_free {} pooled {}",
            b.size(),
            free,
            largest,
            tier.pools.pooled(b.index())
        )?;
        // Fragmentation: the share of free memory that is not in the largest free block.
        let frag = (largest * 100).checked_div(free).map_or(0, |l| 100 - l);
        writeln!(f, "  fragmentation {}%", frag)?;
        write!(f, "  free blocks:")?;
        for (order, count) in hist.iter().enumerate().filter(|(_, c)| **c > 0) {
            write!(f, " ")?;
            size(f, (PAGE_SIZE as u64) << order)?;
            write!(f, ":{}", count)?;
        }
        writeln!(f)?;
    }
    Ok(())
}

/// `moreram/processes`.
fn processes(tier: &Arc<Tier>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Ok(files) = tier.open_files() else {
        return Ok(());
    };
    for file in files.iter() {
        open_file(file, f)?;
    }
    let Ok(pools) = tier.pools.report() else {
        return Ok(());
    };
    for p in pools.iter() {
        write!(f, "pool of pid {}: {} system pages", p.pid, p.system_pages)?;
        for (b, n) in p.vram.iter() {
            write!(f, ", bank {}: {} pages", b, n)?;
        }
        for (b, d) in p.deadlines.iter() {
            write!(f, ", bank {} asked back by {} ns", b, d)?;
        }
        writeln!(f)?;
    }
    Ok(())
}

/// One open file of `moreram/processes`.
fn open_file(file: &crate::front::file::OpenFile, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "file {} opened by pid {}",
        file.client_id(),
        file.opener().nr()
    )?;
    let h = file.handles.lock();
    for (handle, entry) in h.by_handle.iter() {
        let a = &entry.alloc;
        let (place, bank) = match a.tier() {
            uapi::Tier::Vram(b) => ("vram bank", i64::from(b)),
            uapi::Tier::System => ("system", -1),
        };
        writeln!(
            f,
            "  handle {} held by pid {}: {} bytes {} {} offset {:#x} mappings {} holders {}",
            handle,
            entry.holder.nr(),
            a.size(),
            place,
            bank,
            a.pgoff() << PAGE_SHIFT,
            a.mappings(),
            a.holders()
        )?;
        let st = a.state();
        for (s, e, r) in st.rights.in_range(0, a.npages()) {
            write!(
                f,
                "    pages {}-{}: owner {}",
                s,
                e - 1,
                r.owner.as_ref().map_or(0, |p| p.nr())
            )?;
            for w in r.writers.iter() {
                write!(f, " writer {}", w.nr())?;
            }
            writeln!(f)?;
        }
        for r in st.readers.iter() {
            writeln!(f, "    shared with pid {}", r.nr())?;
        }
    }
    Ok(())
}

/// `moreram/memdebug`, read.
fn memdebug(tier: &Arc<Tier>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", if tier.memdebug.on() { "Y" } else { "N" })
}

/// `moreram/poison_errors`: freed memory found written when handed out again.
fn poison_errors(tier: &Arc<Tier>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", tier.memdebug.poison_errors())
}

/// `moreram/leaks`: files closed while their memory was still mapped elsewhere.
fn leaks(tier: &Arc<Tier>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", tier.memdebug.leaks())
}

/// Reads a short line of text from `r` into `buf`; returns it trimmed.
fn line<'a>(r: &mut UserSliceReader, buf: &'a mut [u8]) -> Result<&'a str> {
    let n = r.len();
    if n > buf.len() {
        return Err(EINVAL);
    }
    r.read_slice(&mut buf[..n])?;
    core::str::from_utf8(&buf[..n])
        .map(str::trim)
        .map_err(|_| EINVAL)
}

/// `moreram/memdebug`, written: `1`/`Y`/`y` on, `0`/`N`/`n` off (as `debugfs_create_bool`).
fn set_memdebug(tier: &Arc<Tier>, r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 8];
    let on = match line(r, &mut buf)? {
        "1" | "Y" | "y" => true,
        "0" | "N" | "n" => false,
        _ => return Err(EINVAL),
    };
    tier.memdebug.set(on);
    Ok(())
}

/// `moreram/poke`: "BANK OFFSET VALUE" writes the 64-bit `VALUE` at byte `OFFSET` of bank `BANK`.
fn poke(tier: &Arc<Tier>, r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 96];
    let mut words = line(r, &mut buf)?.split_ascii_whitespace();
    let mut next = || words.next().ok_or(EINVAL);
    let bank: u32 = next()?.parse().map_err(|_| EINVAL)?;
    let offset: u64 = next()?.parse().map_err(|_| EINVAL)?;
    let value: u64 = next()?.parse().map_err(|_| EINVAL)?;
    tier.banks.get(bank).ok_or(ENODEV)?.poke(offset, value)
}
