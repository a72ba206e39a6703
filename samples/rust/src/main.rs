//! moreram-alloc-rs: allocate from the moreram tier with the `moreram` crate, map, fill,
//! verify, and say which tier the memory came from. Usage: `moreram-alloc-rs [SIZE_IN_KIB]`
//! (default 1024).
//!
//! Its values own what they stand for: a `Mapping` is unmapped when dropped, an `Allocation`
//! freed (its handle, `MORERAM_IOC_FREE`) when dropped; the borrow of the file keeps the file
//! open while either lives.

use moreram::{Moreram, Placement};

fn main() -> std::io::Result<()> {
    let kib: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let mr = Moreram::open()?;
    let handles = mr.tier()?.file_allocs;
    {
        let a = mr.alloc(kib * 1024, Placement::PreferVram, false)?;
        {
            let mut m = a.map()?;
            assert!(
                m.as_slice().iter().all(|&b| b == 0),
                "fresh memory is not zeroed"
            );
            for (i, b) in m.as_mut_slice().iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
            assert!(
                m.as_slice()
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == (i % 251) as u8),
                "data lost"
            );
            assert_eq!(a.query()?.mappings, 1);
            println!(
                "{} in {}: written and verified",
                moreram::human_size(a.size()),
                a.tier()
            );
        } // the Mapping goes: unmapped
        assert_eq!(
            a.query()?.mappings,
            0,
            "still mapped after the Mapping went"
        );
        assert_eq!(mr.tier()?.file_allocs, handles + 1);
    } // the Allocation goes: freed
    assert_eq!(
        mr.tier()?.file_allocs,
        handles,
        "the handle outlived its Allocation"
    );
    println!("unmapped when its Mapping was dropped, freed when its Allocation was");
    Ok(())
}
