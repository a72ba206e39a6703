//! The bytes a process writes into a page, and how a page read back is judged.
//!
//! Every word of a written page says which allocation and page it belongs to (a tag derived
//! from the allocation's run-wide id, the page index and the word index, in the high half) and
//! who wrote it last with which generation (the low half: writer instance and generation). A
//! word from another allocation, another page, or another place in the page has the wrong tag: it
//! is data exposed. A word with the right tag but another writer or generation than the model
//! says is data lost (or a write that should have faulted).

pub const PAGE: usize = 4096;
pub const WORDS: usize = PAGE / 8;

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The tag of word `word` of page `page` of allocation `uid`: never 0.
pub fn tag(uid: u64, page: u64, word: usize) -> u32 {
    let t =
        (mix(uid.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (page << 12) ^ word as u64) >> 32) as u32;
    t | 1
}

/// The low half of a word: writer instance (20 bits) and generation (12 bits).
pub fn stamp(writer: u32, gen: u32) -> u32 {
    ((writer & 0xf_ffff) << 12) | (gen & 0xfff)
}

/// Fills `out` with page `page` of allocation `uid` as `writer` writes it in generation `gen`.
pub fn fill(out: &mut [u64; WORDS], uid: u64, page: u64, writer: u32, gen: u32) {
    let s = u64::from(stamp(writer, gen));
    for (i, w) in out.iter_mut().enumerate() {
        *w = (u64::from(tag(uid, page, i)) << 32) | s;
    }
}

/// What a page read back may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Zeros: never written.
    Zero,
    /// Exactly what `writer` wrote in generation `gen`.
    Exact { writer: u32, gen: u32 },
    /// Each word zero or written by anyone for this page (a write was torn, or the model cannot
    /// say who wrote last).
    AnyOwn,
}

/// The first word of `got` that page `page` of allocation `uid` may not hold: `(index, word)`.
pub fn check(got: &[u64; WORDS], uid: u64, page: u64, e: Expect) -> Option<(usize, u64)> {
    for (i, &w) in got.iter().enumerate() {
        let ok = match e {
            Expect::Zero => w == 0,
            Expect::Exact { writer, gen } => {
                w == (u64::from(tag(uid, page, i)) << 32) | u64::from(stamp(writer, gen))
            }
            Expect::AnyOwn => w == 0 || (w >> 32) as u32 == tag(uid, page, i),
        };
        if !ok {
            return Some((i, w));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_pages_check_and_others_do_not() {
        let mut p = [0u64; WORDS];
        fill(&mut p, 7, 3, 5, 9);
        assert_eq!(check(&p, 7, 3, Expect::Exact { writer: 5, gen: 9 }), None);
        assert_eq!(check(&p, 7, 3, Expect::AnyOwn), None);
        assert!(check(&p, 7, 3, Expect::Exact { writer: 5, gen: 10 }).is_some());
        assert!(check(&p, 7, 4, Expect::AnyOwn).is_some());
        assert!(check(&p, 8, 3, Expect::AnyOwn).is_some());
        assert!(check(&p, 7, 3, Expect::Zero).is_some());
        assert_eq!(check(&[0; WORDS], 7, 3, Expect::AnyOwn), None);
        p.swap(0, 1);
        assert!(check(&p, 7, 3, Expect::AnyOwn).is_some());
    }
}
