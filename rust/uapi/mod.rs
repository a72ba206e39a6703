// SPDX-License-Identifier: GPL-2.0

//! The user ABI as the module sees it.
//!
//! The types and constants are those of `include/uapi/linux/moreram.h`, the ABI's one definition,
//! generated from it by bindgen into `generated.rs` (`make uapi`; `make test` fails when the file
//! is not current). Nothing here repeats them: this file only says which of them may be copied
//! to and from user memory, and checks each ioctl argument once, turning it into the request the
//! rest of the module works with.

use kernel::{
    page::PAGE_SHIFT,
    prelude::*,
    transmute::{AsBytes, FromBytes},
};

#[allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    unreachable_pub
)]
mod generated {
    include!("generated.rs");
}

pub(crate) use generated::*;

/// Marks structs of the header as plain bytes, which may be copied to and from user memory.
macro_rules! plain_abi_structs {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: every struct of the header is plain integers (and arrays of them) with
            // explicit reserved fields and no padding (bindgen's layout assertions in
            // `generated.rs` check every offset), so any bit pattern is a valid value.
            unsafe impl FromBytes for $t {}
            // SAFETY: as above: no padding, so every byte is initialised.
            unsafe impl AsBytes for $t {}
        )*
    };
}

plain_abi_structs!(
    moreram_bank_info,
    moreram_banks,
    moreram_alloc,
    moreram_handle,
    moreram_query,
    moreram_tier,
    moreram_share,
    moreram_import,
    moreram_control,
    moreram_rights,
    moreram_proc_info,
    moreram_procs,
    moreram_reserve,
    moreram_scavenge,
    moreram_notify,
    moreram_event,
);

/// `EINVAL` unless every value is zero: reserved fields, and output fields on input.
fn zero(values: &[u64]) -> Result {
    if values.iter().all(|&v| v == 0) {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// `EINVAL` unless every byte of `v` is zero.
fn all_zero<T: AsBytes>(v: &T) -> Result {
    if v.as_bytes().iter().all(|&b| b == 0) {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// A size of whole pages, not zero and at most `MORERAM_MAX_ALLOC`, in pages.
pub(crate) fn pages(size: u64) -> Result<u64> {
    let mask = (1u64 << PAGE_SHIFT) - 1;
    if size == 0 || size & mask != 0 || size > MORERAM_MAX_ALLOC {
        return Err(EINVAL);
    }
    Ok(size >> PAGE_SHIFT)
}

/// A range of pages of an allocation, `[start, end)`, from a byte offset and length.
pub(crate) fn page_range(offset: u64, length: u64, npages: u64) -> Result<(u64, u64)> {
    let mask = (1u64 << PAGE_SHIFT) - 1;
    if length == 0 || offset & mask != 0 || length & mask != 0 {
        return Err(EINVAL);
    }
    let start = offset >> PAGE_SHIFT;
    let end = start.checked_add(length >> PAGE_SHIFT).ok_or(EINVAL)?;
    if end > npages {
        return Err(EINVAL);
    }
    Ok((start, end))
}

/// Where an allocation may go (`MORERAM_ALLOC_VRAM_ONLY`, `_SYSTEM_ONLY`, `_BANK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// VRAM of the bank with most room, else system pages.
    PreferVram,
    /// VRAM of any bank, or `ENOSPC`.
    VramOnly,
    /// System pages only.
    SystemOnly,
    /// VRAM of this bank only.
    Bank(u32),
}

/// Where an allocation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tier {
    /// VRAM of the bank with this index.
    Vram(u32),
    /// System pages.
    System,
}

impl Tier {
    /// `(tier, bank)` as the ABI reports them.
    pub(crate) fn abi(self) -> (u32, u32) {
        match self {
            Tier::Vram(bank) => (MORERAM_TIER_VRAM, bank),
            Tier::System => (MORERAM_TIER_SYSTEM, MORERAM_NO_BANK),
        }
    }
}

/// A checked `MORERAM_IOC_ALLOC` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AllocRequest {
    pub(crate) npages: u64,
    pub(crate) placement: Placement,
    pub(crate) contiguous: bool,
    /// The ABI flags as given, reported back by `MORERAM_IOC_QUERY`.
    pub(crate) flags: u32,
}

impl moreram_alloc {
    /// Checks the request against the rules of the ABI.
    pub(crate) fn request(&self) -> Result<AllocRequest> {
        zero(&[
            self.reserved0.into(),
            self.handle.into(),
            self.tier.into(),
            self.bank_used.into(),
            self.mmap_offset,
        ])?;
        zero(&self.reserved)?;
        let f = self.flags;
        if f & !MORERAM_ALLOC_FLAGS_ALL != 0 {
            return Err(EINVAL);
        }
        let contiguous = f & MORERAM_ALLOC_CONTIGUOUS != 0;
        let placement = match (
            f & MORERAM_ALLOC_SYSTEM_ONLY != 0,
            f & MORERAM_ALLOC_BANK != 0,
        ) {
            (true, _) if f & (MORERAM_ALLOC_VRAM_ONLY | MORERAM_ALLOC_BANK) != 0 || contiguous => {
                return Err(EINVAL)
            }
            (true, _) => Placement::SystemOnly,
            (false, true) => Placement::Bank(self.bank),
            (false, false) if f & MORERAM_ALLOC_VRAM_ONLY != 0 => Placement::VramOnly,
            (false, false) => Placement::PreferVram,
        };
        if !matches!(placement, Placement::Bank(_)) && self.bank != 0 {
            return Err(EINVAL);
        }
        Ok(AllocRequest {
            npages: pages(self.size)?,
            placement,
            contiguous,
            flags: f,
        })
    }
}

impl moreram_banks {
    /// Checks the reserved fields.
    pub(crate) fn check(&self) -> Result {
        zero(&[self.reserved0.into()])?;
        zero(&self.reserved)
    }
}

impl moreram_handle {
    /// The handle, once the reserved fields are checked.
    pub(crate) fn handle(&self) -> Result<u32> {
        zero(&[self.reserved0.into()])?;
        zero(&self.reserved)?;
        Ok(self.handle)
    }
}

impl moreram_query {
    /// The handle; everything else is output and must be zero.
    pub(crate) fn handle(&self) -> Result<u32> {
        all_zero(&Self { handle: 0, ..*self })?;
        Ok(self.handle)
    }
}

impl moreram_tier {
    /// Everything is output and must be zero.
    pub(crate) fn check(&self) -> Result {
        all_zero(self)
    }
}

impl moreram_share {
    /// The named process's number, if the share names one.
    pub(crate) fn named(&self) -> Result<Option<i32>> {
        zero(&[self.reserved0.into(), self.token])?;
        zero(&self.reserved)?;
        match self.flags {
            MORERAM_SHARE_NAMED => Ok(Some(self.pid)),
            0 if self.pid == 0 => Ok(None),
            _ => Err(EINVAL),
        }
    }
}

impl moreram_import {
    /// The token; everything else is output and must be zero.
    pub(crate) fn token(&self) -> Result<u64> {
        all_zero(&Self { token: 0, ..*self })?;
        Ok(self.token)
    }
}

/// A checked `MORERAM_IOC_CONTROL` command; `pid` is the target process's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// Let `pid` write the pages.
    GrantWrite(i32),
    /// Take the write right from `pid`, or from every writer (`None`).
    RevokeWrite(Option<i32>),
    /// Make `pid` the owner.
    Give(i32),
}

impl moreram_control {
    /// Checks the reserved fields.
    pub(crate) fn check(&self) -> Result {
        zero(&[self.reserved0.into()])?;
        zero(&self.reserved)
    }

    /// The command.
    pub(crate) fn command(&self) -> Result<Control> {
        match (self.cmd, self.pid) {
            (MORERAM_CTL_REVOKE_WRITE, 0) => Ok(Control::RevokeWrite(None)),
            (MORERAM_CTL_REVOKE_WRITE, pid) => Ok(Control::RevokeWrite(Some(pid))),
            (MORERAM_CTL_GRANT_WRITE, pid) => Ok(Control::GrantWrite(pid)),
            (MORERAM_CTL_GIVE, pid) => Ok(Control::Give(pid)),
            _ => Err(EINVAL),
        }
    }
}

impl moreram_rights {
    /// Checks that the reserved and output fields are zero.
    pub(crate) fn check(&self) -> Result {
        zero(&[
            self.flags.into(),
            self.owner as u64,
            self.caller.into(),
            self.nwriters.into(),
            self.nreaders.into(),
        ])?;
        zero(&self.reserved)
    }
}

impl moreram_procs {
    /// Checks that the reserved and output fields are zero.
    pub(crate) fn check(&self) -> Result {
        zero(&[self.reserved0.into(), self.count.into()])?;
        zero(&self.reserved)
    }
}

/// A checked `MORERAM_IOC_RESERVE` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReserveRequest {
    /// `pages` pages of capacity of bank `bank`.
    Vram { bank: u32, pages: u64 },
    /// `pages` system pages.
    System { pages: u64 },
}

impl moreram_reserve {
    /// Checks the request against the rules of the ABI.
    pub(crate) fn request(&self) -> Result<ReserveRequest> {
        zero(&self.reserved)?;
        let pages = pages(self.size)?;
        match self.flags {
            0 => Ok(ReserveRequest::Vram {
                bank: self.bank,
                pages,
            }),
            MORERAM_RESERVE_SYSTEM if self.bank == 0 => Ok(ReserveRequest::System { pages }),
            _ => Err(EINVAL),
        }
    }
}

impl moreram_scavenge {
    /// Everything is output and must be zero.
    pub(crate) fn check(&self) -> Result {
        all_zero(self)
    }
}

impl moreram_notify {
    /// The signal to send with each event (0 for none), once checked.
    pub(crate) fn signal(&self) -> Result<u32> {
        zero(&[self.reserved0.into()])?;
        zero(&self.reserved)?;
        if self.signal > 64 {
            return Err(EINVAL);
        }
        Ok(self.signal)
    }
}

#[kunit_tests(moreram_alloc_request)]
mod tests {
    use super::*;

    const OK: moreram_alloc = moreram_alloc {
        size: 4096,
        flags: 0,
        bank: 0,
        handle: 0,
        tier: 0,
        bank_used: 0,
        reserved0: 0,
        mmap_offset: 0,
        reserved: [0; 4],
    };

    #[test]
    fn accepts_valid_requests() {
        assert_eq!(OK.request().map(|r| r.placement), Ok(Placement::PreferVram));
        let bank = moreram_alloc {
            flags: MORERAM_ALLOC_BANK | MORERAM_ALLOC_CONTIGUOUS,
            bank: 3,
            ..OK
        };
        assert_eq!(
            bank.request().map(|r| (r.placement, r.contiguous)),
            Ok((Placement::Bank(3), true))
        );
        let max = moreram_alloc {
            size: MORERAM_MAX_ALLOC,
            ..OK
        };
        assert!(max.request().is_ok());
    }

    #[test]
    fn rejects_bad_sizes() {
        for size in [0, 1, 4095, 4097, MORERAM_MAX_ALLOC + 4096, !4095] {
            assert_eq!(
                moreram_alloc { size, ..OK }.request().map(|_| ()),
                Err(EINVAL)
            );
        }
    }

    #[test]
    fn rejects_bad_flags_and_fields() {
        let bad = [
            moreram_alloc {
                flags: 1 << 5,
                ..OK
            },
            moreram_alloc {
                flags: MORERAM_ALLOC_SYSTEM_ONLY | MORERAM_ALLOC_VRAM_ONLY,
                ..OK
            },
            moreram_alloc {
                flags: MORERAM_ALLOC_SYSTEM_ONLY | MORERAM_ALLOC_BANK,
                ..OK
            },
            moreram_alloc {
                flags: MORERAM_ALLOC_SYSTEM_ONLY | MORERAM_ALLOC_CONTIGUOUS,
                ..OK
            },
            moreram_alloc { bank: 1, ..OK },
            moreram_alloc { reserved0: 1, ..OK },
            moreram_alloc {
                reserved: [0, 1, 0, 0],
                ..OK
            },
            moreram_alloc { handle: 1, ..OK },
            moreram_alloc { tier: 1, ..OK },
            moreram_alloc { bank_used: 1, ..OK },
            moreram_alloc {
                mmap_offset: 4096,
                ..OK
            },
        ];
        for req in bad.iter() {
            assert_eq!(req.request().map(|_| ()), Err(EINVAL));
        }
    }
}
