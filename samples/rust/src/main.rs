//! moreram-alloc-rs: allocate from the moreram tier, map, fill, verify, and say which tier the
//! memory came from. Usage: `moreram-alloc-rs [SIZE_IN_KIB]` (default 1024).

use moreram::{Moreram, Placement};

fn main() -> std::io::Result<()> {
    let kib: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let mr = Moreram::open()?;
    let a = mr.alloc(kib * 1024, Placement::PreferVram, false)?;
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
    println!(
        "{} in {}: written and verified",
        moreram::human_size(a.size()),
        a.tier()
    );
    drop(m);
    a.free()
}
