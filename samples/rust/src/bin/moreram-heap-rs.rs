//! moreram-heap-rs: libmoreram from Rust (the `libmoreram` crate, lib `moreram_heap`). The
//! program's heap is in the tier (`#[global_allocator]`), and tier memory it asks for by hand
//! lives in values that give it back when dropped: `TierMem` (bytes, or whole pages as
//! blocks), a `MemList` and its `ListMem`s. Usage: `moreram-heap-rs [MIB]` (default 64): the
//! size of a vector on the heap.
//!
//! Without `/dev/moreram` it says so and exits 0; the global allocator is then the C
//! library's.

use moreram_heap::{heap, stats, MemList, Placement, Tier, TierAlloc, TierMem};
use std::{io, process::ExitCode};

/// Every heap allocation of this program: VRAM, else system pages of the tier.
#[global_allocator]
static HEAP: TierAlloc = TierAlloc::new(Placement::ANY);

fn place(p: *const u8) -> String {
    match heap::tier_of(p) {
        Some(Tier::Vram(b)) => format!("VRAM of bank {b}"),
        Some(Tier::System) => "system pages of the tier".into(),
        None => "the C library's heap".into(),
    }
}

fn held() -> io::Result<u64> {
    let s = stats()?;
    Ok(s.vram_held + s.system_held)
}

fn run(mib: usize) -> io::Result<()> {
    // An ordinary Vec: its buffer comes from the global allocator.
    let v: Vec<u64> = (0..(mib as u64) << 17).collect();
    assert_eq!(
        v.iter().sum::<u64>(),
        (v.len() as u64 - 1) * v.len() as u64 / 2
    );
    println!(
        "a Vec of {mib} MiB on the heap: in {}",
        place(v.as_ptr().cast())
    );

    // Bytes of VRAM only, zeroed; freed at the end of the block.
    {
        let mut m = TierMem::alloc(1 << 20, Placement::VRAM, true)?;
        assert!(m.iter().all(|&b| b == 0), "not zeroed");
        m.fill(0x5a);
        assert!(m.iter().all(|&b| b == 0x5a), "data lost");
        println!(
            "TierMem of 1 MiB in {}, {} bytes usable",
            place(m.as_ptr()),
            m.usable_size()
        );
    }

    // Blocks: whole pages of a kernel allocation of their own, given back to it on drop.
    let before = held()?;
    let b = TierMem::blocks(8 << 20, Placement::ANY)?;
    let with = held()?;
    drop(b);
    let after = held()?;
    assert!(
        with >= before + (8 << 20) && after == before,
        "{before} {with} {after}"
    );
    println!(
        "blocks of 8 MiB: the library held {} MiB more while they lived, and no more after",
        (with - before) >> 20
    );

    // A memory list: its allocations go back to it on drop, and dropping it frees it whole.
    let list = MemList::new(Placement::ANY)?;
    {
        let items = (0..1000)
            .map(|i| list.alloc(64 + i))
            .collect::<io::Result<Vec<_>>>()?;
        println!(
            "a memory list: {} allocations, the first in {}",
            items.len(),
            place(items[0].as_ptr())
        );
    }
    drop(list);
    drop(v);
    println!(
        "scavenged: {} bytes given back to the kernel",
        moreram_heap::scavenge()?
    );
    Ok(())
}

fn main() -> ExitCode {
    if let Err(e) = heap::init() {
        if matches!(
            e.raw_os_error(),
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO)
        ) {
            println!("no tier here: {e}");
            return ExitCode::SUCCESS;
        }
        eprintln!("moreram-heap-rs: {e}");
        return ExitCode::FAILURE;
    }
    let mib = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    match run(mib) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moreram-heap-rs: {e}");
            ExitCode::FAILURE
        }
    }
}
