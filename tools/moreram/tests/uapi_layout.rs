//! The Rust mirror (`moreram::sys`) against the C header, as the system C compiler sees it.

use moreram::sys::*;
use std::{collections::BTreeMap, mem::offset_of, path::PathBuf, process::Command};

macro_rules! layout {
    ($($s:ident { $($f:ident),* }),* $(,)?) => {{
        let mut m = BTreeMap::new();
        $(
            m.insert(stringify!($s).to_string(), std::mem::size_of::<$s>());
            $(m.insert(concat!(stringify!($s), ".", stringify!($f)).to_string(), offset_of!($s, $f));)*
        )*
        m
    }};
}

fn rust_layout() -> BTreeMap<String, usize> {
    let mut m = layout! {
        moreram_bank_info {
            index, flags, size, free, bar_start, bar_len, pci_domain, pci_bus, pci_dev,
            pci_func, bar, vendor, device, reserved0, largest_free, pooled, low_watermark, min_watermark
        },
        moreram_banks { count, capacity, entry_size, reserved0, banks_ptr, reserved },
        moreram_alloc { size, flags, bank, handle, tier, bank_used, reserved0, mmap_offset, reserved },
        moreram_handle { handle, reserved0, reserved },
        moreram_query { handle, tier, bank, flags, size, mmap_offset, mappings, reserved0, reserved },
        moreram_tier {
            banks, reserved0, vram_size, vram_free, system_used, file_vram, file_system,
            file_allocs, reserved1, pool_vram, pool_system, reserved
        },
        moreram_share { handle, flags, pid, reserved0, token, reserved },
        moreram_import { token, handle, tier, bank, reserved0, size, mmap_offset, reserved },
        moreram_control { handle, cmd, offset, length, pid, reserved0, reserved },
        moreram_rights { handle, flags, offset, length, owner, caller, nwriters, writers_cap, writers_ptr, nreaders, readers_cap, readers_ptr, reserved },
        moreram_proc_info { pid, reserved0, vram, system, reserved },
        moreram_reserve { size, bank, flags, reserved },
        moreram_scavenge { vram, system, reserved },
        moreram_notify { signal, reserved0, reserved },
        moreram_procs { count, capacity, entry_size, reserved0, procs_ptr, reserved },
    };
    m.insert("MORERAM_IOC_BANKS".into(), MORERAM_IOC_BANKS as usize);
    m.insert(
        "MORERAM_BANK_INFO_SIZE_V1".into(),
        MORERAM_BANK_INFO_SIZE_V1 as usize,
    );
    m.insert(
        "MORERAM_BANK_PREFETCHABLE".into(),
        MORERAM_BANK_PREFETCHABLE as usize,
    );
    m.insert("MORERAM_BANK_64BIT".into(), MORERAM_BANK_64BIT as usize);
    m.insert("moreram_event".into(), std::mem::size_of::<moreram_event>());
    m.insert(
        "moreram_event.type".into(),
        offset_of!(moreram_event, type_),
    );
    m.insert("moreram_event.bank".into(), offset_of!(moreram_event, bank));
    m.insert(
        "moreram_event.bytes".into(),
        offset_of!(moreram_event, bytes),
    );
    m.insert(
        "moreram_event.deadline_ns".into(),
        offset_of!(moreram_event, deadline_ns),
    );
    m.insert(
        "moreram_event.reserved".into(),
        offset_of!(moreram_event, reserved),
    );
    for (k, v) in [
        ("MORERAM_IOC_ALLOC", MORERAM_IOC_ALLOC as usize),
        ("MORERAM_IOC_FREE", MORERAM_IOC_FREE as usize),
        ("MORERAM_IOC_QUERY", MORERAM_IOC_QUERY as usize),
        ("MORERAM_IOC_TIER", MORERAM_IOC_TIER as usize),
        ("MORERAM_ALLOC_VRAM_ONLY", MORERAM_ALLOC_VRAM_ONLY as usize),
        (
            "MORERAM_ALLOC_SYSTEM_ONLY",
            MORERAM_ALLOC_SYSTEM_ONLY as usize,
        ),
        ("MORERAM_ALLOC_BANK", MORERAM_ALLOC_BANK as usize),
        (
            "MORERAM_ALLOC_CONTIGUOUS",
            MORERAM_ALLOC_CONTIGUOUS as usize,
        ),
        ("MORERAM_ALLOC_FLAGS_ALL", MORERAM_ALLOC_FLAGS_ALL as usize),
        ("MORERAM_TIER_VRAM", MORERAM_TIER_VRAM as usize),
        ("MORERAM_TIER_SYSTEM", MORERAM_TIER_SYSTEM as usize),
        ("MORERAM_NO_BANK", MORERAM_NO_BANK as usize),
        ("MORERAM_MAX_ALLOC", MORERAM_MAX_ALLOC as usize),
        ("MORERAM_RESERVE_SYSTEM", MORERAM_RESERVE_SYSTEM as usize),
        ("MORERAM_EVENT_SCAVENGE", MORERAM_EVENT_SCAVENGE as usize),
        ("MORERAM_IOC_RESERVE", MORERAM_IOC_RESERVE as usize),
        ("MORERAM_IOC_SCAVENGE", MORERAM_IOC_SCAVENGE as usize),
        ("MORERAM_IOC_NOTIFY", MORERAM_IOC_NOTIFY as usize),
        ("MORERAM_SHARE_NAMED", MORERAM_SHARE_NAMED as usize),
        ("MORERAM_CTL_GRANT_WRITE", MORERAM_CTL_GRANT_WRITE as usize),
        (
            "MORERAM_CTL_REVOKE_WRITE",
            MORERAM_CTL_REVOKE_WRITE as usize,
        ),
        ("MORERAM_CTL_GIVE", MORERAM_CTL_GIVE as usize),
        ("MORERAM_RIGHT_READ", MORERAM_RIGHT_READ as usize),
        ("MORERAM_RIGHT_WRITE", MORERAM_RIGHT_WRITE as usize),
        ("MORERAM_RIGHT_OWNER", MORERAM_RIGHT_OWNER as usize),
        ("MORERAM_RIGHTS_MIXED", MORERAM_RIGHTS_MIXED as usize),
        (
            "MORERAM_PROC_INFO_SIZE_V1",
            MORERAM_PROC_INFO_SIZE_V1 as usize,
        ),
        ("MORERAM_IOC_SHARE", MORERAM_IOC_SHARE as usize),
        ("MORERAM_IOC_IMPORT", MORERAM_IOC_IMPORT as usize),
        ("MORERAM_IOC_CONTROL", MORERAM_IOC_CONTROL as usize),
        ("MORERAM_IOC_RIGHTS", MORERAM_IOC_RIGHTS as usize),
        ("MORERAM_IOC_PROCS", MORERAM_IOC_PROCS as usize),
    ] {
        m.insert(k.into(), v);
    }
    m
}

/// Compiles a program that prints every size, offset and constant the header defines that the
/// Rust table names, and returns what it printed.
fn c_layout(names: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/moreram.h>\nint main(void) {\n",
    );
    for name in names.keys() {
        let expr = match name.split_once('.') {
            Some((s, f)) => format!("offsetof(struct {s}, {f})"),
            None if name.starts_with("MORERAM_") => format!("(size_t)({name})"),
            None => format!("sizeof(struct {name})"),
        };
        c += &format!("  printf(\"%s %zu\\n\", \"{name}\", (size_t){expr});\n");
    }
    c += "  return 0;\n}\n";
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(cc)
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(root.join("include/uapi"))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("run the C compiler");
    assert!(
        st.success(),
        "the header does not compile with the names the Rust mirror uses"
    );
    let out = Command::new(&exe).output().expect("run the layout program");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn rust_mirror_matches_the_c_header() {
    let rust = rust_layout();
    let c = c_layout(&rust);
    assert_eq!(rust, c);
}
