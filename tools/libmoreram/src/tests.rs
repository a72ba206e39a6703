// SPDX-License-Identifier: GPL-2.0
//! Host tests: the whole library over anonymous memory in place of `/dev/moreram` (a source
//! that exists only in test builds).

use super::*;
use crate::{capi, chunk, source::Anon};
use std::sync::{atomic::Ordering, Mutex};

static ANON: Anon = Anon::new();
/// The tests count the chunks of one process-wide heap: they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn setup() -> std::sync::MutexGuard<'static, ()> {
    let g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    heap::init_with(&ANON).expect("anonymous source");
    g
}

fn held() -> usize {
    chunk::HELD.iter().map(|h| h.load(Ordering::Relaxed)).sum()
}

#[test]
fn size_classes_round_up_and_keep_their_bytes() {
    let _g = setup();
    let mut live = Vec::new();
    for (i, size) in [
        1usize,
        8,
        16,
        24,
        100,
        500,
        4095,
        4096,
        10_000,
        70_000,
        3 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = TierMem::alloc(size, Placement::ANY, true).unwrap();
        assert!(m.iter().all(|&b| b == 0), "zeroed, size {size}");
        assert!(m.usable_size() >= size, "usable size of {size}");
        assert!(
            m.usable_size() < size * 2 + 16,
            "size class of {size} is tight"
        );
        assert_eq!(m.tier(), Tier::Vram(0));
        m.fill(i as u8);
        live.push(m);
    }
    for (i, m) in live.iter().enumerate() {
        assert!(
            m.iter().all(|&b| b == i as u8),
            "allocation {i} kept its bytes"
        );
    }
}

#[test]
fn address_lookup_knows_its_own_and_nothing_else() {
    let _g = setup();
    let m = TierMem::alloc(48, Placement::SYSTEM, false).unwrap();
    assert!(heap::owns(m.as_ptr()));
    assert_eq!(heap::tier_of(m.as_ptr()), Some(Tier::System));
    let on_stack = 0u64;
    let boxed = Box::new(1u64);
    for p in [
        std::ptr::from_ref(&on_stack).cast::<u8>(),
        std::ptr::from_ref(&*boxed).cast(),
        std::ptr::null(),
        usize::MAX as *const u8,
    ] {
        assert!(!heap::owns(p));
        assert_eq!(heap::tier_of(p), None);
        assert_eq!(heap::usable_size(p), 0);
    }
    // SAFETY: not ours: refused, nothing freed.
    let e = unsafe { heap::free(std::ptr::from_ref(&*boxed).cast_mut().cast()) }.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn placements_get_arenas_of_their_own() {
    let _g = setup();
    let a = TierMem::alloc(64, Placement::ANY, false).unwrap();
    let s = TierMem::alloc(64, Placement::SYSTEM, false).unwrap();
    let b = TierMem::alloc(
        64,
        Placement {
            kind: Kind::Bank(3),
            contiguous: true,
        },
        false,
    )
    .unwrap();
    assert_eq!(s.tier(), Tier::System);
    assert_eq!(b.tier(), Tier::Vram(3));
    let arenas: Vec<_> = [&a, &s, &b]
        .iter()
        .map(|m| chunk::arena_of(m.as_ptr() as usize).unwrap())
        .collect();
    assert!(arenas[0] != arenas[1] && arenas[1] != arenas[2] && arenas[0] != arenas[2]);
}

#[test]
fn realloc_keeps_bytes_and_arena() {
    let _g = setup();
    let p = heap::alloc(100, 16, Placement::SYSTEM, false)
        .unwrap()
        .as_ptr();
    // SAFETY: 100 bytes just allocated.
    unsafe { std::ptr::write_bytes(p, 0x7e, 100) };
    // SAFETY: a live heap allocation, given up on success.
    let q = unsafe { heap::realloc(p, 1 << 20, 16) }.unwrap().as_ptr();
    // SAFETY: at least 100 bytes carried over.
    assert!(unsafe { std::slice::from_raw_parts(q, 100) }
        .iter()
        .all(|&b| b == 0x7e));
    assert_eq!(heap::tier_of(q), Some(Tier::System));
    // SAFETY: live, freed once.
    unsafe { heap::free(q) }.unwrap();
}

#[test]
fn threads_free_what_others_allocated() {
    let _g = setup();
    let (tx, rx) = std::sync::mpsc::channel::<(usize, usize, u8)>();
    let producers: Vec<_> = (0..4u8)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..2000usize {
                    let size = 8 + (i * 37) % 3000;
                    let p = heap::alloc(size, 16, Placement::ANY, false)
                        .unwrap()
                        .as_ptr();
                    // SAFETY: `size` bytes just allocated.
                    unsafe { std::ptr::write_bytes(p, t, size) };
                    tx.send((p as usize, size, t)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumer = std::thread::spawn(move || {
        for (p, size, t) in rx {
            // SAFETY: live allocation of `size` bytes handed over by its maker.
            let s = unsafe { std::slice::from_raw_parts(p as *const u8, size) };
            assert!(s.iter().all(|&b| b == t));
            // SAFETY: freed once, here.
            unsafe { heap::free(p as *mut u8) }.unwrap();
        }
    });
    for p in producers {
        p.join().unwrap();
    }
    consumer.join().unwrap();
}

#[test]
fn memory_lists_are_destroyed_whole() {
    let _g = setup();
    let before = held();
    {
        let list = MemList::new(Placement::VRAM).unwrap();
        let mut kept = Vec::new();
        for i in 0..5000usize {
            let mut m = list.alloc(16 + i % 2000).unwrap();
            m.fill(0xa5);
            assert_eq!(chunk::arena_of(m.as_ptr() as usize), Some(list.arena()));
            if i % 2 == 0 {
                kept.push(m);
            }
        }
        assert!(held() > before, "the list took chunks");
        // The list allocations borrow the list: they go before it.
        drop(kept);
    }
    assert_eq!(
        held(),
        before,
        "destroying the list gave back all its chunks"
    );
}

#[test]
fn blocks_are_whole_chunks_given_back_on_drop() {
    let _g = setup();
    let before = held();
    let (n, _) = chunk::count();
    let b = TierMem::blocks(5 << 20, Placement::ANY).unwrap();
    assert_eq!(b.as_ptr() as usize % chunk::GRANULE, 0);
    assert!(b.usable_size() >= 5 << 20);
    assert!(b.iter().all(|&x| x == 0));
    assert_eq!(held(), before + (6 << 20));
    assert_eq!(chunk::count().0, n + 1);
    drop(b);
    assert_eq!(held(), before);
    // The address range is reused: holes coalesce.
    let c = TierMem::blocks(5 << 20, Placement::ANY).unwrap();
    drop(c);
    assert_eq!(held(), before);
}

#[test]
fn scavenge_gives_back_wholly_free_chunks() {
    let _g = setup();
    let p = Placement {
        kind: Kind::Bank(7),
        contiguous: false,
    };
    let before = held();
    let v: Vec<_> = (0..64)
        .map(|_| TierMem::alloc(1 << 20, p, false).unwrap())
        .collect();
    assert!(held() >= before + (64 << 20));
    drop(v);
    scavenge().unwrap();
    assert!(
        held() <= before + (32 << 20),
        "after scavenging at most the open chunk stays: {} > {}",
        held(),
        before + (32 << 20)
    );
}

#[test]
fn global_allocator_serves_and_falls_back() {
    let _g = setup();
    let a = TierAlloc::new(Placement::ANY);
    let layout = std::alloc::Layout::from_size_align(1000, 64).unwrap();
    // SAFETY: a valid layout; freed with the same.
    unsafe {
        let p = a.alloc(layout);
        assert!(heap::owns(p));
        assert_eq!(p as usize % 64, 0);
        let q = a.realloc(p, layout, 5000);
        assert!(heap::owns(q));
        a.dealloc(q, std::alloc::Layout::from_size_align(5000, 64).unwrap());
        // Memory of the C library's is given back to it.
        let s = std::alloc::System.alloc(layout);
        a.dealloc(s, layout);
    }
}

#[test]
fn c_flags_decode() {
    use capi::*;
    assert_eq!(placement(0).unwrap(), (Placement::ANY, false));
    assert_eq!(
        placement(MORERAM_MEM_VRAM | MORERAM_MEM_ZERO).unwrap(),
        (Placement::VRAM, true)
    );
    assert_eq!(
        placement(MORERAM_MEM_BANK | (2 << 16) | MORERAM_MEM_CONTIGUOUS)
            .unwrap()
            .0,
        Placement {
            kind: Kind::Bank(2),
            contiguous: true
        }
    );
    for bad in [
        MORERAM_MEM_VRAM | MORERAM_MEM_SYSTEM,
        MORERAM_MEM_SYSTEM | MORERAM_MEM_CONTIGUOUS,
        2 << 16,
        0x20,
    ] {
        assert_eq!(
            placement(bad).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
    }
}

#[test]
fn c_api_follows_its_error_convention() {
    let _g = setup();
    let p = capi::moreram_alloc(10, 0x20);
    assert!(p.is_null());
    // SAFETY: errno is this thread's.
    assert_eq!(unsafe { *libc::__errno_location() }, libc::EINVAL);
    let q = capi::moreram_alloc(10, capi::MORERAM_MEM_SYSTEM);
    let mut bank = 99;
    // SAFETY: `bank` is writable.
    assert_eq!(unsafe { capi::moreram_where(q, &mut bank) }, 2);
    // SAFETY: as above; a stack address is not ours.
    assert_eq!(
        unsafe { capi::moreram_where(std::ptr::from_ref(&bank).cast(), &mut bank) },
        -libc::ENOENT
    );
    let l = capi::moreram_list_create(0);
    assert!(!l.is_null());
    let r = capi::moreram_list_alloc(l, 33);
    // SAFETY: live pointers of the library's.
    unsafe {
        capi::moreram_list_free(l, r);
        capi::moreram_free(q);
    }
    assert_eq!(capi::moreram_list_destroy(l), 0);
    assert_eq!(
        capi::moreram_list_destroy(std::ptr::null_mut()),
        -libc::EINVAL
    );
}

/// `cargo test --release -p libmoreram -- --ignored --nocapture tier_heap_pairs`: the cost of a
/// malloc/free pair on the tier heap's hot path (primary arena, thread cache).
#[test]
#[ignore]
fn tier_heap_pairs() {
    let _g = setup();
    let arena = heap::arena_for(Placement::ANY).unwrap();
    let n = 20_000_000usize;
    let mut keep = [std::ptr::null_mut::<u8>(); 16];
    let t = std::time::Instant::now();
    for i in 0..n {
        let p = heap::alloc_in(arena, 16 + (i * 7919) % 512, 16, false)
            .unwrap()
            .as_ptr();
        let old = std::mem::replace(&mut keep[i & 15], p);
        if !old.is_null() {
            // SAFETY: allocated above, freed once.
            unsafe { heap::free(old) }.unwrap();
        }
    }
    println!(
        "moreram-info: tier heap: {:.2} ns per malloc/free pair",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    for p in keep {
        // SAFETY: the last 16, freed once.
        unsafe { heap::free(p) }.unwrap();
    }
}

#[test]
fn a_forked_child_keeps_its_heap_and_never_frees_the_parents_handles() {
    let _g = setup();
    let mut m = TierMem::alloc(4000, Placement::ANY, false).unwrap();
    m.fill(0x3c);
    let gen = chunk::GENERATION.load(Ordering::Relaxed);
    // SAFETY: the child only uses the library and async-signal-safe calls, then `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // Anonymous chunks are copied as private memory: the heap is there, and new
        // allocations work in the new generation.
        let ok = m.iter().all(|&b| b == 0x3c)
            && chunk::GENERATION.load(Ordering::Relaxed) == gen + 1
            && TierMem::alloc(100_000, Placement::ANY, true).is_ok();
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(chunk::GENERATION.load(Ordering::Relaxed), gen);
}
