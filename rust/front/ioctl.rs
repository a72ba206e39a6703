// SPDX-License-Identifier: GPL-2.0

//! The ioctls of `/dev/moreram`, and `mmap`: each argument is read, checked by its type
//! (`uapi`), carried out on the file, and written back.

use core::mem::size_of;
use kernel::{
    mm::virt::VmaNew,
    page::PAGE_SHIFT,
    prelude::*,
    sync::Arc,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

use super::file::OpenFile;
use crate::{
    memory::{mapping, Allocation},
    policy::access::{self, Change},
    process::Process,
    uapi::{self, Control, ReserveRequest},
};

/// Largest `entry_size` accepted from user space: far beyond any version of the struct, small
/// enough that a bad value cannot make us write much.
const MAX_ENTRY_SIZE: u32 = 4096;

/// Reads a `T` from user memory at `arg` (an `_IOW` argument).
fn read_in<T: FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(UserPtr::from_addr(arg), size_of::<T>())
        .reader()
        .read()
}

/// Reads a `T` from user memory at `arg`, lets `f` update it, and writes it back (an `_IOWR`
/// argument).
fn inout<T: FromBytes + AsBytes>(arg: usize, f: impl FnOnce(&mut T) -> Result) -> Result {
    let (mut reader, mut writer) =
        UserSlice::new(UserPtr::from_addr(arg), size_of::<T>()).reader_writer();
    let mut v: T = reader.read()?;
    f(&mut v)?;
    writer.write(&v)
}

impl OpenFile {
    /// Like [`inout`], for a call that makes a handle (`f` returns it): when the answer cannot be
    /// written back, the caller never learns the handle, so it goes again.
    fn inout_handle<T: FromBytes + AsBytes>(
        self: &Arc<Self>,
        arg: usize,
        f: impl FnOnce(&mut T) -> Result<u32>,
    ) -> Result {
        let (mut reader, mut writer) =
            UserSlice::new(UserPtr::from_addr(arg), size_of::<T>()).reader_writer();
        let mut v: T = reader.read()?;
        let handle = f(&mut v)?;
        writer.write(&v).inspect_err(|_| {
            // Nobody else can have learned the handle either, but a thread of the caller may
            // have guessed and freed it: nothing left to undo then.
            if let Ok(me) = Process::current() {
                let _ = self.forget(handle, &me);
            }
        })
    }
}

/// Writes `entries` to the user array described by `ptr`, `capacity` and `entry_size`, as the
/// ABI's array protocol says: at most `capacity` entries of `entry_size` bytes each (at least
/// `v1`, at most [`MAX_ENTRY_SIZE`]), zero-filling what the kernel's struct does not cover.
fn write_entries<T: AsBytes>(
    ptr: u64,
    capacity: u32,
    entry_size: u32,
    v1: u32,
    entries: &[T],
) -> Result {
    let n = entries.len().min(usize::try_from(capacity)?);
    if n == 0 {
        return Ok(());
    }
    if entry_size < v1 || entry_size > MAX_ENTRY_SIZE {
        return Err(EINVAL);
    }
    let entry = usize::try_from(entry_size)?;
    let ptr = UserPtr::from_addr(usize::try_from(ptr).map_err(|_| EFAULT)?);
    let mut out = UserSlice::new(ptr, n.checked_mul(entry).ok_or(EINVAL)?).writer();
    let zeros = [0u8; 64];
    for e in &entries[..n] {
        let bytes = e.as_bytes();
        out.write_slice(&bytes[..entry.min(bytes.len())])?;
        let mut rest = entry.saturating_sub(bytes.len());
        while rest > 0 {
            let k = rest.min(zeros.len());
            out.write_slice(&zeros[..k])?;
            rest -= k;
        }
    }
    Ok(())
}

/// Writes up to `cap` pids to the user array at `ptr`.
fn write_pids(ptr: u64, cap: u32, pids: &[i32]) -> Result {
    let n = pids.len().min(usize::try_from(cap)?);
    if n == 0 {
        return Ok(());
    }
    let addr = usize::try_from(ptr).map_err(|_| EFAULT)?;
    let mut w = UserSlice::new(UserPtr::from_addr(addr), n * size_of::<i32>()).writer();
    for p in &pids[..n] {
        w.write(p)?;
    }
    Ok(())
}

impl OpenFile {
    /// Carries out ioctl `cmd` with argument `arg`.
    pub(crate) fn ioctl(self: &Arc<Self>, cmd: u32, arg: usize) -> Result {
        match cmd {
            uapi::MORERAM_IOC_BANKS => inout(arg, |r| self.banks(r)),
            uapi::MORERAM_IOC_ALLOC => self.inout_handle(arg, |r| self.alloc(r)),
            uapi::MORERAM_IOC_FREE => self.free(read_in(arg)?),
            uapi::MORERAM_IOC_QUERY => inout(arg, |r| self.query(r)),
            uapi::MORERAM_IOC_TIER => inout(arg, |r| self.tier_info(r)),
            uapi::MORERAM_IOC_SHARE => inout(arg, |r| self.share(r)),
            uapi::MORERAM_IOC_IMPORT => self.inout_handle(arg, |r| self.import(r)),
            uapi::MORERAM_IOC_CONTROL => self.control(read_in(arg)?),
            uapi::MORERAM_IOC_RIGHTS => inout(arg, |r| self.rights(r)),
            uapi::MORERAM_IOC_PROCS => inout(arg, |r| self.procs(r)),
            uapi::MORERAM_IOC_RESERVE => self.reserve(read_in(arg)?),
            uapi::MORERAM_IOC_SCAVENGE => inout(arg, |r| self.scavenge(r)),
            uapi::MORERAM_IOC_NOTIFY => {
                let req: uapi::moreram_notify = read_in(arg)?;
                self.set_notify(req.signal()?)
            }
            _ => Err(ENOTTY),
        }
    }

    /// The allocation behind `handle`, checking that the caller may see it.
    fn readable(&self, handle: u32) -> Result<Arc<Allocation>> {
        let alloc = self.get(handle)?;
        let me = Process::current()?;
        if access::may_read(&alloc, &alloc.state(), &me, access::admin()) {
            Ok(alloc)
        } else {
            Err(EACCES)
        }
    }

    /// `MORERAM_IOC_BANKS`.
    fn banks(&self, req: &mut uapi::moreram_banks) -> Result {
        req.check()?;
        let banks = self.tier.banks.snapshot()?;
        let mut infos = KVec::with_capacity(banks.len(), GFP_KERNEL)?;
        for b in banks.iter() {
            infos.push(self.tier.bank_info(b), GFP_KERNEL)?;
        }
        write_entries(
            req.banks_ptr,
            req.capacity,
            req.entry_size,
            uapi::MORERAM_BANK_INFO_SIZE_V1,
            &infos,
        )?;
        req.count = u32::try_from(banks.len())?;
        Ok(())
    }

    /// `MORERAM_IOC_ALLOC`; returns the new handle.
    fn alloc(&self, req: &mut uapi::moreram_alloc) -> Result<u32> {
        let request = req.request()?;
        let me = Process::current()?;
        // Before the memory is taken: a user at its limits allocates nothing.
        let charge = self.charge_handle()?;
        let mut requests = KVec::new();
        let made = self
            .tier
            .sources()
            .allocate(&request, me.clone(), &mut requests);
        self.tier.deliver(&requests);
        let alloc = made?;
        let (tier, bank) = alloc.tier().abi();
        req.mmap_offset = alloc.pgoff() << PAGE_SHIFT;
        req.handle = self.insert(alloc, me, charge)?;
        req.tier = tier;
        req.bank_used = bank;
        Ok(req.handle)
    }

    /// `MORERAM_IOC_FREE`: forgets the handle. The memory goes when the last mapping does.
    fn free(self: &Arc<Self>, req: uapi::moreram_handle) -> Result {
        self.forget(req.handle()?, &Process::current()?)
    }

    /// Forgets `handle`, which `me` holds.
    fn forget(self: &Arc<Self>, handle: u32, me: &Process) -> Result {
        let entry = self.remove(handle, me)?;
        // Outside the file's lock: freeing VRAM takes the bank's locks.
        self.tier.unshare(&entry.tokens);
        entry.alloc.unhold(&entry.holder);
        Ok(())
    }

    /// `MORERAM_IOC_QUERY`.
    fn query(&self, req: &mut uapi::moreram_query) -> Result {
        let handle = req.handle()?;
        let alloc = self.readable(handle)?;
        let (tier, bank) = alloc.tier().abi();
        *req = uapi::moreram_query {
            handle,
            tier,
            bank,
            flags: alloc.flags(),
            size: alloc.size(),
            mmap_offset: alloc.pgoff() << PAGE_SHIFT,
            mappings: alloc.mappings(),
            ..Default::default()
        };
        Ok(())
    }

    /// `MORERAM_IOC_TIER`.
    fn tier_info(&self, req: &mut uapi::moreram_tier) -> Result {
        req.check()?;
        let (pool_vram, pool_system) = self.tier.pools.sizes(&Process::current()?);
        let banks = self.tier.banks.snapshot()?;
        let h = self.handles.lock();
        *req = uapi::moreram_tier {
            banks: u32::try_from(banks.len())?,
            vram_size: banks.iter().map(|b| b.size()).sum(),
            vram_free: banks.iter().map(|b| b.free()).sum(),
            system_used: self.tier.space.system_used(),
            file_vram: h.vram_bytes,
            file_system: h.system_bytes,
            file_allocs: h.count,
            pool_vram,
            pool_system,
            ..Default::default()
        };
        Ok(())
    }

    /// `MORERAM_IOC_SHARE`.
    fn share(self: &Arc<Self>, req: &mut uapi::moreram_share) -> Result {
        let named = req.named()?.map(Process::find).transpose()?;
        let alloc = self.readable(req.handle)?;
        access::share(&alloc, &Process::current()?, named.as_ref())?;
        req.token = self.tier.share(self, req.handle, alloc, named)?;
        Ok(())
    }

    /// `MORERAM_IOC_IMPORT`; returns the new handle.
    fn import(&self, req: &mut uapi::moreram_import) -> Result<u32> {
        let token = req.token()?;
        let me = Process::current()?;
        let charge = self.charge_handle()?;
        let alloc = self.tier.import(token, &me, access::admin())?;
        alloc.hold(&me)?;
        let handle = self.insert(alloc.clone(), me, charge)?;
        let (tier, bank) = alloc.tier().abi();
        *req = uapi::moreram_import {
            token,
            handle,
            tier,
            bank,
            size: alloc.size(),
            mmap_offset: alloc.pgoff() << PAGE_SHIFT,
            ..Default::default()
        };
        Ok(handle)
    }

    /// `MORERAM_IOC_CONTROL`.
    fn control(&self, req: uapi::moreram_control) -> Result {
        req.check()?;
        let alloc = self.readable(req.handle)?;
        let range = uapi::page_range(req.offset, req.length, alloc.npages())?;
        let change = match req.command()? {
            Control::GrantWrite(pid) => Change::GrantWrite(Process::find(pid)?),
            Control::RevokeWrite(pid) => Change::RevokeWrite(pid.map(Process::find).transpose()?),
            Control::Give(pid) => Change::Give(Process::find(pid)?),
        };
        access::control(&alloc, &Process::current()?, range, change)
    }

    /// `MORERAM_IOC_RIGHTS`.
    fn rights(&self, req: &mut uapi::moreram_rights) -> Result {
        req.check()?;
        let alloc = self.readable(req.handle)?;
        let range = uapi::page_range(req.offset, req.length, alloc.npages())?;
        let r = access::report(&alloc, &Process::current()?, range)?;
        write_pids(req.writers_ptr, req.writers_cap, &r.writers)?;
        write_pids(req.readers_ptr, req.readers_cap, &r.readers)?;
        req.owner = r.owner;
        req.caller = r.caller;
        req.flags = if r.mixed {
            uapi::MORERAM_RIGHTS_MIXED
        } else {
            0
        };
        req.nwriters = u32::try_from(r.writers.len())?;
        req.nreaders = u32::try_from(r.readers.len())?;
        Ok(())
    }

    /// `MORERAM_IOC_PROCS`.
    fn procs(&self, req: &mut uapi::moreram_procs) -> Result {
        req.check()?;
        let procs = self.tier.procs()?;
        write_entries(
            req.procs_ptr,
            req.capacity,
            req.entry_size,
            uapi::MORERAM_PROC_INFO_SIZE_V1,
            &procs,
        )?;
        req.count = u32::try_from(procs.len())?;
        Ok(())
    }

    /// `MORERAM_IOC_RESERVE`.
    fn reserve(&self, req: uapi::moreram_reserve) -> Result {
        let me = Process::current()?;
        match req.request()? {
            ReserveRequest::System { pages } => {
                self.tier.pools.reserve_system(&me, usize::try_from(pages)?)
            }
            ReserveRequest::Vram { bank, pages } => {
                let b = self.tier.banks.get(bank).ok_or(ENODEV)?;
                let requests = self.tier.pools.reserve_vram(&b, &me, pages)?;
                self.tier.deliver(&requests);
                Ok(())
            }
        }
    }

    /// `MORERAM_IOC_SCAVENGE`.
    fn scavenge(&self, req: &mut uapi::moreram_scavenge) -> Result {
        req.check()?;
        let (vram, system) = self.tier.pools.scavenge(&Process::current()?);
        req.vram = vram;
        req.system = system;
        Ok(())
    }

    /// `mmap(2)` of pages of one of this file's allocations.
    pub(crate) fn mmap(&self, vma: &VmaNew) -> Result {
        use kernel::mm::virt::flags as vm;
        // Pages are shared with the device and with other mappings: a private copy makes no
        // sense. `MAP_SHARED` sets `VM_MAYSHARE`; `VM_SHARED` is cleared for a file not open for
        // writing, whose shared mappings can then only be read.
        if vma.flags() & vm::MAYSHARE == 0 {
            return Err(EINVAL);
        }
        if vma.executable() {
            return Err(EPERM);
        }
        vma.try_clear_mayexec()?;
        // SAFETY: `vm_pgoff` of a VMA under construction is a plain read.
        let pgoff = unsafe { (*vma.as_ptr()).vm_pgoff } as u64;
        let npages = ((vma.end() - vma.start()) >> PAGE_SHIFT) as u64;
        let alloc = self.find_by_pgoff(pgoff).ok_or(EINVAL)?;
        let start = pgoff - alloc.pgoff();
        let end = start + npages;
        if end > alloc.npages() {
            return Err(EINVAL);
        }
        let admin = access::admin();
        mapping::install(vma, &alloc, Process::current()?, (start, end), |st, me| {
            if access::may_read(&alloc, st, me, admin) {
                Ok(())
            } else {
                Err(EACCES)
            }
        })
    }
}
