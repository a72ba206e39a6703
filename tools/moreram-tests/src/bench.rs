//! moreram-bench: the cost of moreram allocations against a baseline measured in the same run.
//!
//! For each size it times, over many rounds: ALLOC+FREE alone; ALLOC, mmap, touch every page,
//! munmap, FREE; and the baseline, an anonymous mmap, touch every page, munmap. It prints the
//! times and the ratio against the baseline. Times are printed, never asserted.

use moreram::{Moreram, Placement};
use std::time::{Duration, Instant};

fn per_round(rounds: u32, mut f: impl FnMut()) -> Duration {
    f(); // warm up
    let t = Instant::now();
    for _ in 0..rounds {
        f();
    }
    t.elapsed() / rounds
}

fn touch(p: *mut u8, len: usize) {
    for off in (0..len).step_by(4096) {
        // SAFETY: `p` maps `len` writable bytes.
        unsafe { p.add(off).write_volatile(1) };
    }
}

fn main() -> std::io::Result<()> {
    let mr = Moreram::open()?;
    println!(
        "{:<10} {:<28} {:>12} {:>12} {:>8}",
        "size", "operation", "moreram", "baseline", "ratio"
    );
    for (size, rounds) in [(4096u64, 2000u32), (64 << 20, 5)] {
        let len = size as usize;
        let anon = per_round(rounds, || {
            // SAFETY: a fresh anonymous mapping, unmapped below.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            touch(p.cast(), len);
            // SAFETY: unmaps what was mapped above.
            unsafe { libc::munmap(p, len) };
        });
        for placement in [Placement::VramOnly, Placement::SystemOnly] {
            let alloc_free = per_round(rounds, || {
                let a = mr.alloc(size, placement, false).expect("ALLOC");
                a.free().expect("FREE");
            });
            let full = per_round(rounds, || {
                let a = mr.alloc(size, placement, false).expect("ALLOC");
                let m = a.map().expect("mmap");
                touch(m.as_ptr(), len);
                drop(m);
                a.free().expect("FREE");
            });
            let tier = if placement == Placement::VramOnly {
                "vram"
            } else {
                "system"
            };
            for (op, t) in [
                (format!("{tier}: alloc+free"), alloc_free),
                (format!("{tier}: alloc+map+touch+free"), full),
            ] {
                println!(
                    "{:<10} {:<28} {:>10.1}us {:>10.1}us {:>7.2}x",
                    moreram::human_size(size),
                    op,
                    t.as_secs_f64() * 1e6,
                    anon.as_secs_f64() * 1e6,
                    t.as_secs_f64() / anon.as_secs_f64()
                );
            }
        }
    }
    println!("baseline: anonymous mmap + touch every page + munmap, same VM, same run");
    Ok(())
}
