//! Tests of what one user can make the module do or hold, and of calls that must leave nothing
//! behind when they fail.

use crate::{check, Test, TestResult};
use moreram::{Moreram, Placement};
use std::io;

const PAGE: u64 = 4096;

/// The tests of this file.
pub const TESTS: &[Test] = &[Test::new("import-same-file", &["limits"], |_| {
    import_same_file()
})];

fn e(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

fn open() -> Result<Moreram, String> {
    Moreram::open().map_err(e("open"))
}

/// An allocation imported into the file that made it has two handles there; freeing either
/// leaves the other usable, mmap included.
fn import_same_file() -> TestResult {
    let mr = open()?;
    for free_made in [true, false] {
        let a = mr
            .alloc(2 * PAGE, Placement::PreferVram, false)
            .map_err(e("ALLOC"))?;
        let b = mr
            .import(a.share(None).map_err(e("SHARE"))?)
            .map_err(e("IMPORT"))?;
        check!(
            a.handle() != b.handle() && a.mmap_offset() == b.mmap_offset(),
            "two handles {} and {} at {:#x} and {:#x}",
            a.handle(),
            b.handle(),
            a.mmap_offset(),
            b.mmap_offset()
        );
        let (gone, kept) = if free_made { (a, b) } else { (b, a) };
        gone.free().map_err(e("FREE"))?;
        kept.query().map_err(e("QUERY of the handle left"))?;
        let mut m = kept.map().map_err(e(if free_made {
            "mmap through the imported handle after freeing the first"
        } else {
            "mmap through the first handle after freeing the imported one"
        }))?;
        m.as_mut_slice().fill(0x5a);
        check!(
            m.as_slice().iter().all(|&x| x == 0x5a),
            "the mapping does not hold what was written"
        );
        drop(m);
        kept.free().map_err(e("FREE"))?;
    }
    Ok(())
}
