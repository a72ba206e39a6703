// SPDX-License-Identifier: GPL-2.0

//! User mappings of allocations: how a VMA is set up, and its `vm_ops` (raw C callbacks, short
//! forwarders to [`Mapping`]).
//!
//! Every page is inserted by PFN at fault time, after the rights of the process that made the
//! mapping are checked under the allocation's lock; nothing is ever inserted by address.
//!
//! Mappings are not inherited by `fork`, but those of allocations made with
//! `MORERAM_ALLOC_FORK_COPY`: the child's VMA then maps a copy of the pages as they were at the
//! fork (see [`Allocation::fork_copy`]), which it owns from its first fault. Should there be no
//! memory for the copy, the child's VMA maps nothing and every access to it raises `SIGBUS`.

use kernel::{
    bindings,
    ffi::c_ulong,
    mm::virt::{flags as vm, VmaNew},
    page::PAGE_SHIFT,
    prelude::*,
    sync::{Arc, SetOnce, UniqueArc},
};

use super::{pages::Pages, Allocation, State};
use crate::{
    process::Process,
    uapi::{Tier, MORERAM_ALLOC_FORK_COPY},
};

/// What a moreram VMA points to: the allocation it maps and the process that mapped it. Shared
/// by the pieces of a split VMA.
struct Mapping {
    alloc: Arc<Allocation>,
    /// Rights are checked for this process, whoever faults: the one that made the mapping, or,
    /// for the copy a fork made, the child, set at its first fault.
    process: SetOnce<Process>,
    /// The mapping's record in the allocation (see [`Allocation::map`]).
    id: u64,
    /// A copy made at fork, which only this mapping holds.
    copy: bool,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.copy {
            // Nothing else holds a copy: its child lets go of it, as of a freed allocation.
            if let Some(child) = self.process.as_ref() {
                self.alloc.let_go_copy(child);
            }
        }
        // The last piece is gone: pages only this mapping kept may go back.
        self.alloc.unmap(self.id);
    }
}

impl Mapping {
    /// The page of the allocation that `pgoff` names.
    fn page(&self, pgoff: u64) -> Option<u64> {
        let index = pgoff.checked_sub(self.alloc.pgoff())?;
        (index < self.alloc.npages()).then_some(index)
    }

    /// Whether the mapping's process may write page `index` now.
    fn may_write(&self, st: &State, index: u64) -> bool {
        let Some(process) = self.process.as_ref() else {
            return false;
        };
        !st.is_released(index) && st.rights.at(index).is_some_and(|r| r.may_write(process))
    }

    /// The process rights are checked for. The first fault on a copy made at fork is the
    /// child's (only the threads of the mm a VMA is in fault on it): the copy becomes its own.
    ///
    /// # Safety
    ///
    /// `vma` is a live VMA of this mapping, locked.
    unsafe fn process(&self, vma: *const bindings::vm_area_struct) -> Option<&Process> {
        if let Some(p) = self.process.as_ref() {
            return Some(p);
        }
        // SAFETY: `vma` is live (caller).
        if unsafe { (*vma).vm_mm } != current_mm() {
            return None;
        }
        let child = Process::current().ok()?;
        self.alloc.adopt(&child);
        // Two threads of the child may race here; either sets the same process, and the loser
        // waits out the few instructions the winner takes to store it.
        if !self.process.populate(child) {
            while self.process.as_ref().is_none() {
                core::hint::spin_loop();
            }
        }
        self.process.as_ref()
    }

    /// The child's side of a fork: a mapping of a copy of the pages `vma` (the child's VMA, a
    /// copy of one of ours) maps, or `None` if the copy could not be made.
    ///
    /// # Safety
    ///
    /// `vma` is the child's new VMA, in `dup_mmap`.
    unsafe fn fork(&self, vma: *const bindings::vm_area_struct) -> Option<Arc<Mapping>> {
        // SAFETY: `vma` is live (caller).
        let (pgoff, range) = unsafe {
            (
                (*vma).vm_pgoff as u64,
                (*vma).__bindgen_anon_1.__bindgen_anon_1,
            )
        };
        let npages = ((range.vm_end - range.vm_start) >> PAGE_SHIFT) as u64;
        let start = self.page(pgoff)?;
        let copy = self.alloc.fork_copy(start, start + npages).ok()?;
        let id = copy.map(&mut copy.state(), 0, npages).ok()?;
        Arc::new(
            Mapping {
                alloc: copy,
                process: SetOnce::new(),
                id,
                copy: true,
            },
            GFP_KERNEL_ACCOUNT,
        )
        .ok()
    }

    /// A fault at `pgoff`: inserts the page, writable if the process may write it, or refuses.
    ///
    /// # Safety
    ///
    /// `vmf` is a live fault on a VMA of this mapping, with the mmap or VMA lock held.
    unsafe fn fault(&self, vmf: *mut bindings::vm_fault, pgoff: u64, write: bool) -> u32 {
        let Some(index) = self.page(pgoff) else {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        };
        // SAFETY: the caller guarantees the fault and its VMA are live and locked.
        let vma = unsafe { (*vmf).__bindgen_anon_1.vma };
        // SAFETY: as above.
        if unsafe { self.process(vma) }.is_none() {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
        // Rights are checked, and the page inserted, under the allocation's lock: a change of
        // rights zaps under the same lock, so it cannot miss a page inserted on the old rights.
        let st = self.alloc.state();
        if st.is_released(index) {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
        let may_write = self.may_write(&st, index);
        if write && !may_write {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
        // SAFETY: as above.
        let prot = unsafe { page_prot(vma, may_write, matches!(st.pages, Pages::Vram(_))) };
        match &st.pages {
            // SAFETY: our VMAs are VM_PFNMAP, the fault holds the VMA's lock (caller), and the
            // page is not released (checked above).
            Pages::Vram(v) => unsafe { v.insert(vmf, index, prot) },
            Pages::System(pages) => {
                let Some(pfn) = pages.pfn(index) else {
                    return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
                };
                // SAFETY: a VM_PFNMAP VMA under its lock; the page stays allocated while the VMA
                // holds the allocation, and is not released while any VMA covers it.
                unsafe {
                    bindings::vmf_insert_pfn_prot(
                        vma,
                        (*vmf).__bindgen_anon_1.address,
                        pfn as c_ulong,
                        prot,
                    )
                }
            }
        }
    }
}

/// The protection for a page of `vma`: the VMA's own if the process may write the page, else
/// the VMA's without write (write-combined for VRAM either way).
///
/// # Safety
///
/// `vma` must be a live VMA, locked.
unsafe fn page_prot(
    vma: *mut bindings::vm_area_struct,
    writable: bool,
    vram: bool,
) -> bindings::pgprot_t {
    if writable {
        // SAFETY: reading the protection of a live VMA under its lock (caller).
        return unsafe { (*vma).vm_page_prot };
    }
    // SAFETY: reading the flags of a live VMA under its lock (caller).
    let flags = unsafe { (*vma).__bindgen_anon_2.vm_flags } & !vm::WRITE;
    // SAFETY: pure computations on protection bits.
    unsafe {
        let prot = bindings::vm_get_page_prot(flags);
        if vram {
            bindings::pgprot_writecombine(prot)
        } else {
            prot
        }
    }
}

/// Sets up `vma`, a new shared mapping of pages `[start, end)` of `alloc` by `process`, once
/// `allowed` (called under the allocation's lock) agrees. A mapping that is not writable stays
/// so: `mprotect` cannot add write.
pub(crate) fn install(
    vma: &VmaNew,
    alloc: &Arc<Allocation>,
    process: Process,
    (start, end): (u64, u64),
    allowed: impl FnOnce(&State, &Process) -> Result,
) -> Result {
    let mut data = UniqueArc::new(
        Mapping {
            alloc: alloc.clone(),
            process: SetOnce::new(),
            id: 0,
            copy: false,
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    data.process.populate(process);
    let process = data.process.as_ref().ok_or(EINVAL)?.clone();
    {
        let mut st = alloc.state();
        allowed(&st, &process)?;
        if st.any_released(start, end) {
            return Err(EACCES);
        }
        if vma.writable() {
            // Writable only where the process may write every page; the rights are checked again
            // at every fault, and `pfn_mkwrite`, as they change.
            if !st.rights.all(start, end, |r| r.may_write(&process)) {
                return Err(EACCES);
            }
        } else {
            vma.try_clear_maywrite()?;
        }
        data.id = alloc.map(&mut st, start, end)?;
    }
    set_flags(
        vma,
        alloc.tier(),
        alloc.flags() & MORERAM_ALLOC_FORK_COPY != 0,
    );
    let data: Arc<Mapping> = data.into();
    let raw = vma.as_ptr();
    // SAFETY: the VMA is not shared yet; from here it owns one reference to `data`, released in
    // `moreram_vm_close`.
    unsafe {
        (*raw).vm_private_data = Arc::into_raw(data).cast_mut().cast();
        (*raw).vm_ops = &VM_OPS.0;
    }
    Ok(())
}

/// Fixed size (no mremap growth), not in core dumps; pages are inserted by PFN at fault time,
/// so the mm never touches a `struct page` of ours. VRAM is I/O memory, mapped write-combined.
/// Not inherited by fork, or, with `fork_copy`, inherited without page-table entries (the mm's
/// "wipe on fork"): [`moreram_vm_open`] gives the child's VMA a copy to fault in.
fn set_flags(vma: &VmaNew, tier: Tier, fork_copy: bool) {
    vma.set_dontexpand();
    if !fork_copy {
        vma.set_dontcopy();
    }
    vma.set_dontdump();
    let raw = vma.as_ptr();
    let wipe = if fork_copy { vm::WIPEONFORK } else { 0 };
    // SAFETY: the VMA is not shared yet, and VM_PFNMAP is consistent with the other flags (we
    // never set VM_MIXEDMAP); the mm never copies the page-table entries of a VM_WIPEONFORK VMA.
    unsafe { (*raw).__bindgen_anon_2.vm_flags |= vm::PFNMAP | wipe };
    if let Tier::Vram(_) = tier {
        vma.set_io();
        // SAFETY: as above.
        unsafe { (*raw).vm_page_prot = bindings::pgprot_writecombine((*raw).vm_page_prot) };
    }
}

/// The current task's mm.
fn current_mm() -> *mut bindings::mm_struct {
    // SAFETY: no preconditions; only compared, never dereferenced.
    unsafe { crate::shim::moreram_current_mm() }
}

/// A C table that is only read after static initialisation.
struct AssertSync<T>(T);

// SAFETY: the wrapped table is immutable.
unsafe impl<T> Sync for AssertSync<T> {}

/// The `vm_ops` of every moreram mapping.
static VM_OPS: AssertSync<bindings::vm_operations_struct> =
    AssertSync(bindings::vm_operations_struct {
        open: Some(moreram_vm_open),
        close: Some(moreram_vm_close),
        fault: Some(moreram_vm_fault),
        pfn_mkwrite: Some(moreram_vm_pfn_mkwrite),
        ..pin_init::zeroed()
    });

/// The data of a moreram VMA; `None` for a child's VMA whose copy could not be made.
///
/// # Safety
///
/// `vma` must be a live VMA whose `vm_ops` is [`VM_OPS`].
unsafe fn vma_data<'a>(vma: *const bindings::vm_area_struct) -> Option<&'a Mapping> {
    // SAFETY: our VMAs hold a reference to their data in `vm_private_data` from `install` (or
    // `open`) until `close`, or hold NULL.
    unsafe { (*vma).vm_private_data.cast::<Mapping>().as_ref() }
}

/// # Safety
///
/// Called by the mm when a moreram VMA is copied: split or mremap in the same mm, or by `fork`
/// (`dup_mmap`, which holds both mms and every VMA of the parent's), for the child.
unsafe extern "C" fn moreram_vm_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: `vma` is ours; the copy shares `vm_private_data` with the original, whose
    // reference keeps the data alive during this call.
    let Some(data) = (unsafe { vma_data(vma) }) else {
        return;
    };
    // SAFETY: `vma` is live for the call.
    if unsafe { (*vma).vm_mm } != current_mm() {
        // SAFETY: `dup_mmap` calls us on the child's VMA, write-locked and linked in no file's
        // mapping tree yet.
        let copy = unsafe { data.fork(vma) };
        // SAFETY: as above; the original's reference stays with the original. VM_WIPEONFORK
        // again, which `madvise(MADV_KEEPONFORK)` may have cleared: the mm then does not copy
        // the parent's page-table entries into this VMA.
        unsafe {
            (*vma).vm_private_data = copy.map_or(core::ptr::null_mut(), |c| {
                Arc::into_raw(c).cast_mut().cast()
            });
            (*vma).__bindgen_anon_2.vm_flags |= vm::WIPEONFORK;
        }
        return;
    }
    // SAFETY: `data` came from `Arc::into_raw` in `install` or here; the new VMA takes its own
    // reference, released by its `close`, and the original's is given back untouched.
    let original = unsafe { Arc::from_raw(core::ptr::from_ref(data)) };
    let _ = Arc::into_raw(original.clone());
    let _ = Arc::into_raw(original);
    data.alloc.vma_opened();
}

/// # Safety
///
/// Called by the mm when a moreram VMA goes away, after its pages are unmapped.
unsafe extern "C" fn moreram_vm_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: `vma` is ours.
    let Some(data) = (unsafe { vma_data(vma) }) else {
        return;
    };
    data.alloc.vma_closed();
    // SAFETY: releases the reference this VMA took in `install` or `open`; the page tables no
    // longer point at the pages.
    drop(unsafe { Arc::from_raw(core::ptr::from_ref(data)) });
}

/// # Safety
///
/// Called by the mm on a page fault in a moreram VMA.
unsafe extern "C" fn moreram_vm_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: the mm passes a valid fault whose VMA is ours and locked.
    let (vma, pgoff, flags) = unsafe {
        (
            (*vmf).__bindgen_anon_1.vma,
            (*vmf).__bindgen_anon_1.pgoff,
            (*vmf).flags,
        )
    };
    // SAFETY: as above.
    let Some(data) = (unsafe { vma_data(vma) }) else {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    };
    let write = flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0;
    // SAFETY: as above.
    unsafe { data.fault(vmf, pgoff as u64, write) }
}

/// # Safety
///
/// Called by the mm when a moreram page mapped read-only in a writable VMA is written.
unsafe extern "C" fn moreram_vm_pfn_mkwrite(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: the mm passes a valid fault whose VMA is ours and locked.
    let (vma, pgoff) = unsafe { ((*vmf).__bindgen_anon_1.vma, (*vmf).__bindgen_anon_1.pgoff) };
    // SAFETY: as above.
    let Some(data) = (unsafe { vma_data(vma) }) else {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    };
    // The PTE is made writable after we return only if it is still the one that faulted: a
    // change of rights that zapped it in between sends the write back through `fault`.
    match data.page(pgoff as u64) {
        Some(index) if data.may_write(&data.alloc.state(), index) => 0,
        _ => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
    }
}
