// SPDX-License-Identifier: GPL-2.0

//! `/dev/moreram`, the misc device through which programs use the tier.
//!
//! The device is registered with raw `file_operations` rather than through
//! [`kernel::miscdevice::MiscDevice`]: the node must be usable by every user (mode 0666; access
//! control is the job of the ownership model, not of file permissions) and must support `poll`,
//! and the safe abstraction offers neither.

use core::mem::size_of;
use kernel::{
    bindings,
    error::{from_result, to_result},
    ffi::{c_int, c_long, c_uint, c_ulong},
    mm::virt::{flags as vm, VmaNew},
    page::PAGE_SHIFT,
    prelude::*,
    sync::{Arc, ArcBorrow},
    transmute::{AsBytes, FromBytes},
    types::{ForeignOwnable, Opaque},
    uaccess::{UserPtr, UserSlice},
};

use crate::{
    bank, file,
    file::MoreramFile,
    memory::{is_set, Allocation, Pages},
    rights::Process,
    uapi,
};

/// Largest `entry_size` accepted from user space: far beyond any version of the struct, small
/// enough that a bad value cannot make us write much.
const MAX_ENTRY_SIZE: u32 = 4096;

/// The registered `/dev/moreram` node.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration {
    #[pin]
    dev: Opaque<bindings::miscdevice>,
}

// SAFETY: the miscdevice is only touched by `misc_register`/`misc_deregister`, which may run on
// any thread.
unsafe impl Send for Registration {}
// SAFETY: no method gives access to the miscdevice through `&self`.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers `/dev/moreram`.
    pub(crate) fn register() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            dev <- Opaque::try_ffi_init(|slot: *mut bindings::miscdevice| {
                // SAFETY: `slot` is valid for writes and pinned.
                unsafe {
                    slot.write(bindings::miscdevice {
                        minor: bindings::MISC_DYNAMIC_MINOR as c_int,
                        name: c"moreram".as_char_ptr(),
                        fops: &FOPS.0,
                        mode: 0o666,
                        ..pin_init::zeroed()
                    })
                };
                // SAFETY: `slot` is initialised, pinned, and lives until `drop` deregisters it.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Registration {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered in `register`, which is the only way to build a `Registration`.
        unsafe { bindings::misc_deregister(self.dev.get()) };
    }
}

/// A C table that is only read after static initialisation.
struct AssertSync<T>(T);

// SAFETY: the wrapped tables are immutable.
unsafe impl<T> Sync for AssertSync<T> {}

static FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    open: Some(moreram_open),
    release: Some(moreram_release),
    read: Some(moreram_read),
    poll: Some(moreram_poll),
    show_fdinfo: Some(moreram_show_fdinfo),
    mmap: Some(moreram_mmap),
    unlocked_ioctl: Some(moreram_ioctl),
    #[cfg(CONFIG_COMPAT)]
    compat_ioctl: Some(bindings::compat_ptr_ioctl),
    ..pin_init::zeroed()
});

/// # Safety
///
/// Called by the VFS when `file`, on `inode` of `/dev/moreram`, is opened.
unsafe extern "C" fn moreram_open(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `file` is being opened; `f_mapping` is set before `->open`.
    let mapping = unsafe { (*file).f_mapping };
    match MoreramFile::new(mapping) {
        Ok(state) => {
            // SAFETY: after `misc_open`, `private_data` is ours until `release`.
            unsafe { (*file).private_data = state.into_foreign() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the VFS once, when the last reference to `file` goes.
unsafe extern "C" fn moreram_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `private_data` was set by `moreram_open` with `into_foreign`, and this is the last
    // use of it. Dropping it lets go of every handle of the file.
    let state = unsafe { Arc::<MoreramFile>::from_foreign((*file).private_data) };
    state.release();
    drop(state);
    0
}

/// The state of an open file.
///
/// # Safety
///
/// `file` must be an open file of `/dev/moreram`, between `moreram_open` and `moreram_release`.
unsafe fn file_state<'a>(file: *mut bindings::file) -> ArcBorrow<'a, MoreramFile> {
    // SAFETY: set by `moreram_open`, freed only by `moreram_release` (caller guarantee).
    unsafe { Arc::<MoreramFile>::borrow((*file).private_data) }
}

/// # Safety
///
/// Called by the VFS with a valid, open `file` of `/dev/moreram`.
unsafe extern "C" fn moreram_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: the VFS calls ioctl only between open and release.
    let state = unsafe { file_state(file) };
    from_result(|| {
        match cmd {
            uapi::IOC_BANKS => ioctl_banks(arg),
            uapi::IOC_ALLOC => inout(arg, |req: &mut uapi::Alloc| state.alloc(req)),
            uapi::IOC_FREE => {
                let state: Arc<MoreramFile> = state.into();
                let req: uapi::Handle = read_in(arg)?;
                if req.reserved0 != 0 || req.reserved.iter().any(|&r| r != 0) {
                    return Err(EINVAL);
                }
                state.free(req.handle).map(|()| 0)
            }
            uapi::IOC_QUERY => inout(arg, |req: &mut uapi::Query| {
                let handle = req.handle;
                req.handle = 0;
                if req.as_bytes().iter().any(|&b| b != 0) {
                    return Err(EINVAL);
                }
                *req = state.query(handle)?;
                Ok(())
            }),
            uapi::IOC_TIER => inout(arg, |req: &mut uapi::Tier| {
                if req.as_bytes().iter().any(|&b| b != 0) {
                    return Err(EINVAL);
                }
                *req = state.tier()?;
                Ok(())
            }),
            uapi::IOC_SHARE => {
                let state: Arc<MoreramFile> = state.into();
                inout(arg, |req: &mut uapi::Share| state.share(req))
            }
            uapi::IOC_IMPORT => inout(arg, |req: &mut uapi::Import| state.import(req)),
            uapi::IOC_CONTROL => {
                let req: uapi::Control = read_in(arg)?;
                state.control(&req).map(|()| 0)
            }
            uapi::IOC_RIGHTS => inout(arg, |req: &mut uapi::Rights| state.rights(req)),
            uapi::IOC_PROCS => ioctl_procs(arg),
            uapi::IOC_RESERVE => {
                let req: uapi::Reserve = read_in(arg)?;
                state.reserve(&req).map(|()| 0)
            }
            uapi::IOC_SCAVENGE => inout(arg, file::scavenge),
            uapi::IOC_NOTIFY => {
                let req: uapi::Notify = read_in(arg)?;
                state.notify(&req).map(|()| 0)
            }
            _ => Err(ENOTTY),
        }
        .map(|r| r as c_long)
    })
}

/// `read(2)`: one scavenge event (`struct moreram_event`) per call; waits for one unless the file
/// is non-blocking.
///
/// # Safety
///
/// Called by the VFS with a valid, open `file` of `/dev/moreram` and a user buffer.
unsafe extern "C" fn moreram_read(
    file: *mut bindings::file,
    buf: *mut kernel::ffi::c_char,
    count: usize,
    _pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: called between open and release.
    let state = unsafe { file_state(file) };
    // SAFETY: `file` is valid for the call.
    let nonblock = unsafe { (*file).f_flags } & bindings::O_NONBLOCK != 0;
    let r = (|| -> Result<isize> {
        if count < size_of::<uapi::Event>() {
            return Err(EINVAL);
        }
        let ev = state.next_event(nonblock)?;
        UserSlice::new(UserPtr::from_addr(buf as usize), size_of::<uapi::Event>())
            .writer()
            .write(&ev)?;
        Ok(size_of::<uapi::Event>() as isize)
    })();
    match r {
        Ok(n) => n,
        Err(e) => e.to_errno() as isize,
    }
}

/// `/proc/<pid>/fdinfo/<fd>`: DRM usage-stats keys.
///
/// # Safety
///
/// Called by procfs with a valid seq_file and an open `file` of `/dev/moreram`.
unsafe extern "C" fn moreram_show_fdinfo(m: *mut bindings::seq_file, file: *mut bindings::file) {
    // SAFETY: called between open and release.
    let state = unsafe { file_state(file) };
    // SAFETY: `m` is valid for the call.
    let m = unsafe { kernel::seq_file::SeqFile::from_raw(m) };
    state.show_fdinfo(m);
}

/// `poll(2)`: `POLLPRI | POLLIN` while a scavenge event waits to be read.
///
/// # Safety
///
/// Called by the VFS with a valid, open `file` of `/dev/moreram`.
unsafe extern "C" fn moreram_poll(
    file: *mut bindings::file,
    wait: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: called between open and release.
    let state = unsafe { file_state(file) };
    // SAFETY: valid for the call.
    let f = unsafe { kernel::fs::File::from_raw_file(file) };
    // SAFETY: the poll table is valid for the call.
    let table = unsafe { kernel::sync::poll::PollTable::from_raw(wait) };
    table.register_wait(f, state.event_cv());
    if state.has_events() {
        bindings::POLLPRI | bindings::POLLIN | bindings::POLLRDNORM
    } else {
        0
    }
}

/// Reads a `T` from user memory at `arg` (an `_IOW` argument).
fn read_in<T: FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(UserPtr::from_addr(arg), size_of::<T>())
        .reader()
        .read()
}

/// Reads a `T` from user memory at `arg`, lets `f` update it, and writes it back.
fn inout<T: FromBytes + AsBytes>(arg: usize, f: impl FnOnce(&mut T) -> Result) -> Result<isize> {
    let (mut reader, mut writer) =
        UserSlice::new(UserPtr::from_addr(arg), size_of::<T>()).reader_writer();
    let mut v: T = reader.read()?;
    f(&mut v)?;
    writer.write(&v)?;
    Ok(0)
}

/// Writes `entries` to the user array described by `ptr`, `capacity` and `entry_size`, as the
/// ABI's array protocol says: at most `capacity` entries of `entry_size` bytes each (at least
/// `v1`, at most [`MAX_ENTRY_SIZE`]), zero-filling what the kernel's struct does not cover.
fn write_entries<T: AsBytes>(
    ptr: u64,
    capacity: u32,
    entry_size: u32,
    v1: usize,
    entries: &[T],
) -> Result {
    let n = entries.len().min(usize::try_from(capacity)?);
    if n == 0 {
        return Ok(());
    }
    let entry = usize::try_from(entry_size)?;
    if entry < v1 || entry_size > MAX_ENTRY_SIZE {
        return Err(EINVAL);
    }
    let ptr = UserPtr::from_addr(usize::try_from(ptr).map_err(|_| EFAULT)?);
    let mut out = UserSlice::new(ptr, n.checked_mul(entry).ok_or(EINVAL)?).writer();
    for e in &entries[..n] {
        let bytes = e.as_bytes();
        out.write_slice(&bytes[..entry.min(bytes.len())])?;
        let mut rest = entry.saturating_sub(bytes.len());
        while rest > 0 {
            let zeros = [0u8; 64];
            let k = rest.min(zeros.len());
            out.write_slice(&zeros[..k])?;
            rest -= k;
        }
    }
    Ok(())
}

/// `MORERAM_IOC_BANKS`: reports the banks bound now.
fn ioctl_banks(arg: usize) -> Result<isize> {
    let (mut reader, mut writer) =
        UserSlice::new(UserPtr::from_addr(arg), size_of::<uapi::Banks>()).reader_writer();
    let mut req: uapi::Banks = reader.read()?;
    if req.reserved0 != 0 || req.reserved.iter().any(|&r| r != 0) {
        return Err(EINVAL);
    }
    let banks = bank::snapshot()?;
    let mut infos = KVec::with_capacity(banks.len(), GFP_KERNEL)?;
    for b in banks.iter() {
        infos.push(b.info(), GFP_KERNEL)?;
    }
    write_entries(
        req.banks_ptr,
        req.capacity,
        req.entry_size,
        uapi::BANK_INFO_SIZE_V1,
        &infos,
    )?;
    req.count = u32::try_from(banks.len())?;
    writer.write(&req)?;
    Ok(0)
}

/// `MORERAM_IOC_PROCS`: per-process use of the tier.
fn ioctl_procs(arg: usize) -> Result<isize> {
    let (mut reader, mut writer) =
        UserSlice::new(UserPtr::from_addr(arg), size_of::<uapi::Procs>()).reader_writer();
    let mut req: uapi::Procs = reader.read()?;
    if req.reserved0 != 0 || req.reserved.iter().any(|&r| r != 0) || req.count != 0 {
        return Err(EINVAL);
    }
    let procs = file::procs()?;
    write_entries(
        req.procs_ptr,
        req.capacity,
        req.entry_size,
        uapi::PROC_INFO_SIZE_V1,
        &procs,
    )?;
    req.count = u32::try_from(procs.len())?;
    writer.write(&req)?;
    Ok(0)
}

/// The `vm_ops` of every moreram mapping. Its address also identifies our VMAs.
static VM_OPS: AssertSync<bindings::vm_operations_struct> =
    AssertSync(bindings::vm_operations_struct {
        open: Some(moreram_vm_open),
        close: Some(moreram_vm_close),
        fault: Some(moreram_vm_fault),
        pfn_mkwrite: Some(moreram_vm_pfn_mkwrite),
        ..pin_init::zeroed()
    });

/// What a moreram VMA points to: the allocation it maps and the process that mapped it. Shared
/// by the pieces of a split VMA.
struct VmaData {
    alloc: Arc<Allocation>,
    /// Rights are checked for this process, whoever faults.
    process: Process,
    /// The mapping's record in the allocation (see [`Allocation::map`]).
    id: u64,
}

impl Drop for VmaData {
    fn drop(&mut self) {
        // The last piece is gone: pages only this mapping kept may go back to the pool.
        self.alloc.unmap(self.id);
    }
}

/// # Safety
///
/// Called by the mm in `mmap(2)` on an open `file` of `/dev/moreram` with a new `vma`.
unsafe extern "C" fn moreram_mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: called between open and release.
    let state = unsafe { file_state(file) };
    // SAFETY: `vma` is being set up by `mmap` and is not shared yet.
    let new = unsafe { VmaNew::from_raw(vma) };
    match mmap(&state, new) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

fn mmap(state: &MoreramFile, vma: &VmaNew) -> Result {
    // Pages are shared with the device and with other mappings: a private copy makes no sense.
    if vma.flags() & vm::SHARED == 0 {
        return Err(EINVAL);
    }
    if vma.executable() {
        return Err(EPERM);
    }
    vma.try_clear_mayexec()?;
    // SAFETY: `vm_pgoff` of a VMA under construction is a plain read.
    let pgoff = unsafe { (*vma.as_ptr()).vm_pgoff } as u64;
    let npages = ((vma.end() - vma.start()) >> PAGE_SHIFT) as u64;
    let alloc = state.find_by_pgoff(pgoff).ok_or(EINVAL)?;
    let start = pgoff - alloc.pgoff();
    let end = start + npages;
    if end > alloc.npages() {
        return Err(EINVAL);
    }
    let me = Process::current();
    let mut data = KBox::new(
        VmaData {
            alloc: alloc.clone(),
            process: me.clone(),
            id: 0,
        },
        GFP_KERNEL,
    )?;
    {
        let mut st = alloc.state();
        if !alloc.may_read(&st, &me, file::admin()) {
            return Err(EACCES);
        }
        if (start..end).any(|p| is_set(&st.released, p)) {
            return Err(EACCES);
        }
        if vma.writable() {
            // Writable only where the process may write every page; the rights are checked again
            // at every fault, and `pfn_mkwrite`, as they change.
            if !st.rights.all(start, end, |r| r.may_write(&me)) {
                return Err(EACCES);
            }
        } else {
            // Read-only stays read-only: `mprotect` cannot add write.
            vma.try_clear_maywrite()?;
        }
        data.id = alloc.map(&mut st, start, end)?;
    }
    // Fixed size (no mremap growth), not inherited by fork, not in core dumps; pages are inserted
    // by PFN at fault time, so the mm never touches a `struct page` of ours.
    vma.set_dontexpand();
    vma.set_dontcopy();
    vma.set_dontdump();
    let raw = vma.as_ptr();
    // SAFETY: the VMA is not shared yet, and VM_PFNMAP is consistent with the other flags (we
    // never set VM_MIXEDMAP).
    unsafe { (*raw).__bindgen_anon_2.vm_flags |= vm::PFNMAP };
    if alloc.is_vram() {
        vma.set_io();
        // SAFETY: as above.
        unsafe { (*raw).vm_page_prot = bindings::pgprot_writecombine((*raw).vm_page_prot) };
    }
    let data: Arc<VmaData> = Arc::new(KBox::into_inner(data), GFP_KERNEL)?;
    // SAFETY: the VMA is not shared yet; from here it owns one reference to `data`, released in
    // `moreram_vm_close`.
    unsafe {
        (*raw).vm_private_data = Arc::into_raw(data).cast_mut().cast();
        (*raw).vm_ops = &VM_OPS.0;
    }
    Ok(())
}

/// The data of a moreram VMA.
///
/// # Safety
///
/// `vma` must be a live VMA whose `vm_ops` is [`VM_OPS`].
unsafe fn vma_data<'a>(vma: *const bindings::vm_area_struct) -> &'a VmaData {
    // SAFETY: our VMAs hold a reference to their data in `vm_private_data` from `mmap` (or
    // `open`) until `close`.
    unsafe { &*(*vma).vm_private_data.cast::<VmaData>() }
}

/// # Safety
///
/// Called by the mm when a moreram VMA is copied (split, mremap).
unsafe extern "C" fn moreram_vm_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: `vma` is ours; the copy shares `vm_private_data` with the original, whose
    // reference keeps the data alive during this call.
    let data = unsafe { vma_data(vma) };
    // SAFETY: `data` came from `Arc::into_raw` in `mmap`; the new VMA takes its own reference,
    // released by its `close`, and the original's is given back untouched.
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
    let data = unsafe { vma_data(vma) };
    data.alloc.vma_closed();
    // SAFETY: releases the reference this VMA took in `mmap` or `open`; the page tables no
    // longer point at the pages.
    drop(unsafe { Arc::from_raw(core::ptr::from_ref(data)) });
}

/// The protection for a page the VMA's process may only read: the VMA's, without write.
///
/// # Safety
///
/// `vma` must be a live VMA.
unsafe fn read_only_prot(vma: *mut bindings::vm_area_struct, vram: bool) -> bindings::pgprot_t {
    // SAFETY: reading the flags of a live VMA under its lock.
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
    let data = unsafe { vma_data(vma) };
    let alloc = &data.alloc;
    let Some(index) = (pgoff as u64).checked_sub(alloc.pgoff()) else {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    };
    if index >= alloc.npages() {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    }
    // Rights are checked, and the page inserted, under the allocation's lock: a change of rights
    // zaps under the same lock, so it cannot miss a page inserted on the old rights.
    let st = alloc.state();
    if is_set(&st.released, index) {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    }
    let may_write = st
        .rights
        .at(index)
        .is_some_and(|r| r.may_write(&data.process));
    if flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0 && !may_write {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    }
    let prot = if may_write {
        // SAFETY: reading the protection of a live VMA under its lock.
        unsafe { (*vma).vm_page_prot }
    } else {
        // SAFETY: `vma` is live.
        unsafe { read_only_prot(vma, alloc.is_vram()) }
    };
    match &st.pages {
        // SAFETY: our VMAs are VM_PFNMAP, the fault holds the VMA's lock, and the page is not
        // released (checked above).
        Pages::Vram(v) => unsafe { v.fault(vmf, index, prot) },
        Pages::System(_) => {
            let Some(pfn) = Allocation::system_pfn(&st, index) else {
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

/// # Safety
///
/// Called by the mm when a moreram page mapped read-only in a writable VMA is written.
unsafe extern "C" fn moreram_vm_pfn_mkwrite(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: the mm passes a valid fault whose VMA is ours and locked.
    let (vma, pgoff) = unsafe { ((*vmf).__bindgen_anon_1.vma, (*vmf).__bindgen_anon_1.pgoff) };
    // SAFETY: as above.
    let data = unsafe { vma_data(vma) };
    let alloc = &data.alloc;
    let Some(index) = (pgoff as u64).checked_sub(alloc.pgoff()) else {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    };
    let st = alloc.state();
    // The PTE is made writable after we return only if it is still the one that faulted: a
    // change of rights that zapped it in between sends the write back through `fault`.
    if !is_set(&st.released, index)
        && st
            .rights
            .at(index)
            .is_some_and(|r| r.may_write(&data.process))
    {
        0
    } else {
        bindings::vm_fault_reason_VM_FAULT_SIGBUS
    }
}
