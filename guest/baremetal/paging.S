/* Sv39 paging: page tables with a 4 KiB page, a 2 MiB megapage and a 1 GiB
   gigapage; translation through aliases; A/D bits set by the hardware walker;
   load/store/fetch page faults with cause and tval (in M and delegated to S);
   invalid, reserved (W without R) and misaligned-superpage PTEs; SUM, MXR,
   U-mode access rules, MPRV, and sfence.vma after remapping. */
#include "common.h"

#define PTE_V   0x01
#define PTE_R   0x02
#define PTE_W   0x04
#define PTE_X   0x08
#define PTE_U   0x10
#define PTE_A   0x40
#define PTE_D   0x80

/* virtual addresses used by the test (see the map built in `main`) */
#define VA_RW       0x80200000      /* 4 KiB, RW, A = D = 0 -> page_rw */
#define VA_HOLE     0x80201000      /* invalid PTE */
#define VA_USER     0x80202000      /* 4 KiB, U RW -> page_user */
#define VA_XONLY    0x80203000      /* 4 KiB, execute-only -> page_xonly */
#define VA_UCODE    0x80204000      /* 4 KiB, U RX -> ucode */
#define VA_RO       0x80205000      /* 4 KiB, read-only -> page_ro */
#define VA_WONLY    0x80206000      /* 4 KiB, W without R: reserved */
#define VA_MEGA     0x80400000      /* 2 MiB read-only alias of 0x8000_0000 */
#define VA_GIGA     0xC0000000      /* 1 GiB alias of 0x8000_0000 */
#define VA_NOROOT   0x40000000      /* root PTE invalid */
#define VA_BADGIGA  0x100000000     /* gigapage PTE with a misaligned PPN */

/* table[index] := leaf/pointer PTE for the physical address in `pa` */
.macro PTE table, index, pa, flags
    srli    t0, \pa, 12
    slli    t0, t0, 10
    li      t1, \flags
    or      t0, t0, t1
    la      t1, \table
    sd      t0, (\index * 8)(t1)
.endm

/* check the trap record's tval against an immediate */
.macro CHECK_TVAL rec, value
    LOAD_REC t5, \rec, REC_TVAL
    CHECK   t5, \value
.endm

/* t5 := PTE flags byte of pt_l0[index] */
.macro L0_FLAGS index
    la      t5, pt_l0
    ld      t5, (\index * 8)(t5)
    andi    t5, t5, 0xff
.endm

    .text
main:
    PRINT   "paging: Sv39 4K/2M/1G pages, A/D, page faults, SUM/MXR, MPRV\n"
    PMP_ALLOW_ALL
    li      a7, 0

    /* the map */
    li      t2, 0
    PTE     pt_root, 0, t2, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D  /* devices */
    la      t2, pt_l1
    PTE     pt_root, 2, t2, PTE_V
    li      t2, 0x80000000
    PTE     pt_root, 3, t2, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D
    li      t2, 0x80200000                      /* not 1 GiB aligned */
    PTE     pt_root, 4, t2, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D
    li      t2, 0x80000000
    PTE     pt_l1, 0, t2, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D
    la      t2, pt_l0
    PTE     pt_l1, 1, t2, PTE_V
    li      t2, 0x80000000
    PTE     pt_l1, 2, t2, PTE_V | PTE_R | PTE_A
    la      t2, page_rw
    PTE     pt_l0, 0, t2, PTE_V | PTE_R | PTE_W
    la      t2, page_user
    PTE     pt_l0, 2, t2, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D
    la      t2, page_xonly
    PTE     pt_l0, 3, t2, PTE_V | PTE_X | PTE_A
    la      t2, ucode
    PTE     pt_l0, 4, t2, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A
    la      t2, page_ro
    PTE     pt_l0, 5, t2, PTE_V | PTE_R | PTE_A
    la      t2, page_rw
    PTE     pt_l0, 6, t2, PTE_V | PTE_W | PTE_A | PTE_D
    /* page contents, written through physical addresses */
    li      t0, 0x1111111111111111
    la      t1, page_rw
    sd      t0, 0(t1)
    li      t0, 0x2222222222222222
    la      t1, page_user
    sd      t0, 0(t1)
    li      t0, 0x3333333333333333
    la      t1, page_xonly
    sd      t0, 0(t1)
    li      t0, 0x5555555555555555
    la      t1, page_ro
    sd      t0, 0(t1)

    la      t0, pt_root
    srli    t0, t0, 12
    li      t1, 8 << 60
    or      t0, t0, t1
    csrw    satp, t0
    sfence.vma
    MRET_TO 1, s_main

s_main:
    TEST    1, "S-mode runs through the identity megapage; satp reads back"
    la      t0, pt_root
    srli    t0, t0, 12
    li      t1, 8 << 60
    or      t0, t0, t1
    csrr    t1, satp
    CHECKR  t0, t1

    TEST    2, "4 KiB page: translation, walker sets A on load, D on store"
    L0_FLAGS 0
    CHECK   t5, PTE_V | PTE_R | PTE_W
    li      s0, VA_RW
    ld      t0, 0(s0)
    CHECK   t0, 0x1111111111111111
    L0_FLAGS 0
    andi    t5, t5, PTE_A | PTE_D
    CHECK   t5, PTE_A
    li      t0, 0x1234
    sd      t0, 8(s0)
    L0_FLAGS 0
    andi    t5, t5, PTE_A | PTE_D
    CHECK   t5, PTE_A | PTE_D
    la      t1, page_rw
    ld      t0, 8(t1)
    CHECK   t0, 0x1234

    TEST    3, "2 MiB megapage alias; store to its read-only mapping faults"
    la      s1, marker
    li      t0, 0x80000000
    sub     s1, s1, t0
    li      t0, VA_MEGA
    add     s1, s1, t0
    ld      t0, 0(s1)
    CHECK   t0, 0x600dcafe600dcafe
    ARM_MTRAP
1:  sd      t0, 0(s1)
    EXPECT_MTRAP CAUSE_STORE_PAGE_FAULT, 1b
    LOAD_REC t5, m_rec, REC_TVAL
    CHECKR  t5, s1

    TEST    4, "1 GiB gigapage alias (and the device gigapage that prints this)"
    la      s1, marker
    li      t0, 0x80000000
    sub     s1, s1, t0
    li      t0, VA_GIGA
    add     s1, s1, t0
    ld      t0, 0(s1)
    CHECK   t0, 0x600dcafe600dcafe
    li      t0, 0x0123456789abcdef
    sd      t0, 8(s1)
    la      t1, marker
    ld      t1, 8(t1)
    CHECKR  t0, t1

    TEST    5, "page faults in M: cause, epc and tval for load/store/fetch"
    li      s0, VA_HOLE
    ARM_MTRAP
2:  ld      t0, 0x10(s0)
    EXPECT_MTRAP CAUSE_LOAD_PAGE_FAULT, 2b
    CHECK_TVAL m_rec, VA_HOLE + 0x10
    ARM_MTRAP
3:  sw      t0, 0x18(s0)
    EXPECT_MTRAP CAUSE_STORE_PAGE_FAULT, 3b
    CHECK_TVAL m_rec, VA_HOLE + 0x18
    ARM_MTRAP
    jalr    ra, 0(s0)                   /* the handler resumes at ra */
    la      t5, m_armed
    ld      t5, 0(t5)
    CHECK   t5, 0
    LOAD_REC t5, m_rec, REC_CAUSE
    CHECK   t5, CAUSE_FETCH_PAGE_FAULT
    LOAD_REC t5, m_rec, REC_EPC
    CHECK   t5, VA_HOLE
    CHECK_TVAL m_rec, VA_HOLE

    TEST    6, "invalid root PTE, W-without-R PTE, misaligned gigapage fault"
    li      s0, VA_NOROOT
    ARM_MTRAP
4:  ld      t0, 0(s0)
    EXPECT_MTRAP CAUSE_LOAD_PAGE_FAULT, 4b
    CHECK_TVAL m_rec, VA_NOROOT
    li      s0, VA_WONLY
    ARM_MTRAP
5:  ld      t0, 0(s0)
    EXPECT_MTRAP CAUSE_LOAD_PAGE_FAULT, 5b
    ARM_MTRAP
6:  sd      t0, 0(s0)
    EXPECT_MTRAP CAUSE_STORE_PAGE_FAULT, 6b
    li      s0, VA_BADGIGA
    ARM_MTRAP
7:  ld      t0, 8(s0)
    EXPECT_MTRAP CAUSE_LOAD_PAGE_FAULT, 7b
    CHECK_TVAL m_rec, VA_BADGIGA + 8
    GOTO_M  m_delegate

m_delegate:
    li      t0, (1 << CAUSE_LOAD_PAGE_FAULT) | (1 << CAUSE_STORE_PAGE_FAULT) | (1 << CAUSE_FETCH_PAGE_FAULT)
    csrw    medeleg, t0
    MRET_TO 1, s_delegated

s_delegated:
    TEST    7, "delegated page faults reach S with scause/stval"
    li      s0, VA_HOLE
    ARM_STRAP
8:  lbu     t0, 7(s0)
    EXPECT_STRAP CAUSE_LOAD_PAGE_FAULT, 8b
    CHECK_TVAL s_rec, VA_HOLE + 7
    ARM_STRAP
9:  sd      t0, 0x100(s0)
    EXPECT_STRAP CAUSE_STORE_PAGE_FAULT, 9b
    CHECK_TVAL s_rec, VA_HOLE + 0x100

    TEST    8, "SUM: S loads from a U page fault unless SUM; never executes it"
    li      s0, VA_USER
    ARM_STRAP
10: ld      t0, 0(s0)
    EXPECT_STRAP CAUSE_LOAD_PAGE_FAULT, 10b
    li      t0, MSTATUS_SUM
    csrs    sstatus, t0
    ld      t0, 0(s0)
    CHECK   t0, 0x2222222222222222
    li      s0, VA_UCODE
    ARM_STRAP
    jalr    ra, 0(s0)
    la      t5, s_armed
    ld      t5, 0(t5)
    CHECK   t5, 0
    LOAD_REC t5, s_rec, REC_CAUSE
    CHECK   t5, CAUSE_FETCH_PAGE_FAULT
    CHECK_TVAL s_rec, VA_UCODE
    li      t0, MSTATUS_SUM
    csrc    sstatus, t0

    TEST    9, "MXR: an execute-only page is readable only with MXR"
    li      s0, VA_XONLY
    ARM_STRAP
11: ld      t0, 0(s0)
    EXPECT_STRAP CAUSE_LOAD_PAGE_FAULT, 11b
    li      t0, MSTATUS_MXR
    csrs    sstatus, t0
    ld      t0, 0(s0)
    CHECK   t0, 0x3333333333333333
    li      t0, MSTATUS_MXR
    csrc    sstatus, t0

    TEST    10, "U mode runs from a U page; its access to an S page faults"
    li      s6, VA_USER
    li      s7, VA_RW
    la      s8, m_after_u
    li      s2, 0
    li      s3, 0x77
    li      t0, VA_UCODE
    csrw    sepc, t0
    li      t0, MSTATUS_SPP
    csrc    sstatus, t0
    ARM_STRAP
    sret

m_after_u:
    CHECK   s2, 0x2222222222222222
    CHECK   s3, 0x77
    la      t5, s_armed
    ld      t5, 0(t5)
    CHECK   t5, 0
    LOAD_REC t5, s_rec, REC_CAUSE
    CHECK   t5, CAUSE_LOAD_PAGE_FAULT
    LOAD_REC t5, s_rec, REC_EPC
    CHECK   t5, VA_UCODE + 4
    CHECK_TVAL s_rec, VA_RW
    LOAD_REC t5, s_rec, REC_STATUS
    andi    t5, t5, MSTATUS_SPP
    CHECK   t5, 0

    TEST    11, "MPRV: M-mode loads/stores translated as S, faults stay in M"
    li      t0, MSTATUS_MPP
    csrc    mstatus, t0
    li      t0, MSTATUS_MPRV | MSTATUS_MPP_S
    csrs    mstatus, t0
    la      s0, marker                  /* marker through the gigapage alias */
    li      t0, VA_GIGA - 0x80000000
    add     s0, s0, t0
    li      t1, 0xfeedface
    sw      t1, 12(s0)
    li      s1, VA_RW
    ld      s2, 0(s1)
    li      s3, VA_HOLE
    ARM_MTRAP
12: ld      t0, 0(s3)
    li      t0, MSTATUS_MPRV            /* mret kept MPRV (MPP was M), drop it */
    csrc    mstatus, t0
    EXPECT_MTRAP CAUSE_LOAD_PAGE_FAULT, 12b
    CHECK_TVAL m_rec, VA_HOLE
    CHECK   s2, 0x1111111111111111
    la      t0, marker
    lwu     t0, 12(t0)
    CHECK   t0, 0xfeedface

    TEST    12, "sfence.vma makes a remapped 4 KiB page visible"
    la      t2, page_ro
    PTE     pt_l0, 0, t2, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D
    sfence.vma
    MRET_TO 1, s_remapped
s_remapped:
    li      s0, VA_RW
    ld      t0, 0(s0)
    CHECK   t0, 0x5555555555555555
    csrw    satp, zero                  /* back to bare */
    sfence.vma
    la      t0, page_ro
    ld      t0, 0(t0)
    CHECK   t0, 0x5555555555555555
    j       pass

/* Code for U mode, reached only through VA_UCODE; position independent.
   In: s6 = U page, s7 = S page, s8 = where M continues. */
    .balign 4096
ucode:
    ld      s2, 0(s6)                   /* allowed */
    ld      s3, 0(s7)                   /* faults (delegated to S, skipped) */
    mv      a0, s8
    li      a7, SYS_TO_M
    ecall
1:  j       1b
    .balign 4096

    .data
    .balign 8
marker: .dword 0x600dcafe600dcafe, 0

    .bss
    .balign 4096
pt_root:    .skip 4096
pt_l1:      .skip 4096
pt_l0:      .skip 4096
page_rw:    .skip 4096
page_user:  .skip 4096
page_xonly: .skip 4096
page_ro:    .skip 4096
