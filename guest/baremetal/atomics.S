/* A extension: LR/SC (success, failure, sign extension, retry loop) and every
   AMO in its .w and .d forms (returned old value, new memory value, rd = x0,
   rd = rs2, aq/rl), misaligned LR/SC/AMO trapping. */
#include "common.h"

/* memory := init; rd := op(src, memory); check rd == old and memory == new
   (memory is read as a doubleword, so .w ops must leave the upper half alone) */
.macro AMOCHK op, init, src, old, new
    la      s0, cell
    li      t0, \init
    sd      t0, 0(s0)
    li      t1, \src
    \op     t2, t1, (s0)
    CHECK   t2, \old
    ld      t2, 0(s0)
    CHECK   t2, \new
.endm

/* misaligned atomics must trap with an address-misaligned or access-fault cause */
.macro CHECK_CAUSE_EITHER c1, c2
    la      t5, m_armed
    ld      t5, 0(t5)
    CHECK   t5, 0
    LOAD_REC t5, m_rec, REC_CAUSE
    li      t6, \c1
    beq     t5, t6, .Lce\@
    CHECK   t5, \c2
.Lce\@:
.endm

/* an AMO is a store: cause 6 or 7. QEMU 7.2 reports a misaligned AMO as a
   load-address-misaligned (4), so that is tolerated as well. */
.macro CHECK_AMO_MISALIGNED
    la      t5, m_armed
    ld      t5, 0(t5)
    CHECK   t5, 0
    LOAD_REC t5, m_rec, REC_CAUSE
    li      t6, CAUSE_MISALIGNED_STORE
    beq     t5, t6, .Lam\@
    li      t6, CAUSE_STORE_ACCESS
    beq     t5, t6, .Lam\@
    CHECK   t5, CAUSE_MISALIGNED_LOAD
.Lam\@:
.endm

    .text
main:
    PRINT   "atomics: LR/SC and all AMOs (w and d)\n"

    TEST    1, "lr.d/sc.d succeed, then sc.d without reservation fails"
    la      s0, cell
    li      t0, 0x1111222233334444
    sd      t0, 0(s0)
    lr.d    t1, (s0)
    CHECKR  t1, t0
    li      t2, 0x5555666677778888
    sc.d    t1, t2, (s0)
    CHECK   t1, 0
    ld      t1, 0(s0)
    CHECKR  t1, t2
    li      t2, 0x9999
    sc.d    t1, t2, (s0)                /* reservation was consumed */
    CHECK_NZ t1
    ld      t1, 0(s0)
    CHECK   t1, 0x5555666677778888

    TEST    2, "lr.w sign-extends, sc.w writes 32 bits"
    la      s0, cell
    li      t0, 0xdeadbeef80000000
    sd      t0, 0(s0)
    lr.w    t1, (s0)
    CHECK   t1, 0xffffffff80000000
    li      t2, 0x0123456789abcdef
    sc.w    t1, t2, (s0)
    CHECK   t1, 0
    ld      t1, 0(s0)
    CHECK   t1, 0xdeadbeef89abcdef
    sc.w    t1, t2, (s0)
    CHECK_NZ t1

    TEST    3, "sc to an address in another page than the lr fails"
    la      s0, cell
    la      s1, far_cell
    sd      zero, 0(s1)
    lr.d    t0, (s0)
    li      t2, 77
    sc.d    t1, t2, (s1)
    CHECK_NZ t1
    ld      t1, 0(s1)
    CHECK   t1, 0

    TEST    4, "lr/sc retry loop counts to 1000"
    la      s0, cell
    sd      zero, 0(s0)
    li      s1, 1000
1:  lr.d    t0, (s0)
    addi    t0, t0, 1
    sc.d    t1, t0, (s0)
    bnez    t1, 1b
    addi    s1, s1, -1
    bnez    s1, 1b
    ld      t0, 0(s0)
    CHECK   t0, 1000
    sw      zero, 0(s0)
    li      s1, 1000
2:  lr.w.aq t0, (s0)
    addiw   t0, t0, 3
    sc.w.rl t1, t0, (s0)
    bnez    t1, 2b
    addi    s1, s1, -1
    bnez    s1, 2b
    lw      t0, 0(s0)
    CHECK   t0, 3000

    TEST    5, "amoswap/amoadd/amoxor/amoand/amoor .w"
    AMOCHK  amoswap.w, 0xdeadbeef80000000, 0x1234567800000001, 0xffffffff80000000, 0xdeadbeef00000001
    AMOCHK  amoadd.w,  0xdeadbeef7fffffff, 1, 0x7fffffff, 0xdeadbeef80000000
    AMOCHK  amoadd.w,  0xdeadbeefffffffff, 0x100000001, -1, 0xdeadbeef00000000
    AMOCHK  amoxor.w,  0xdeadbeefff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0xdeadbeeff0f0f0f0
    AMOCHK  amoand.w,  0xdeadbeefff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0xdeadbeef0f000f00
    AMOCHK  amoor.w,   0xdeadbeefff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0xdeadbeeffff0fff0

    TEST    6, "amomin/amomax/amominu/amomaxu .w"
    AMOCHK  amomin.w,  0xdeadbeef00000005, 0xfffffffb, 5, 0xdeadbeeffffffffb
    AMOCHK  amomin.w,  0xdeadbeef00000005, 0x1fffffffb, 5, 0xdeadbeeffffffffb  /* upper src bits ignored */
    AMOCHK  amomin.w,  0xdeadbeeffffffffb, 5, -5, 0xdeadbeeffffffffb
    AMOCHK  amomax.w,  0xdeadbeeffffffffb, 3, -5, 0xdeadbeef00000003
    AMOCHK  amomax.w,  0xdeadbeef80000000, 0x7fffffff, 0xffffffff80000000, 0xdeadbeef7fffffff
    AMOCHK  amominu.w, 0xdeadbeeffffffffb, 3, -5, 0xdeadbeef00000003
    AMOCHK  amominu.w, 0xdeadbeef00000003, 0xfffffffb, 3, 0xdeadbeef00000003
    AMOCHK  amomaxu.w, 0xdeadbeef00000003, 0xfffffffb, 3, 0xdeadbeeffffffffb
    AMOCHK  amomaxu.w, 0xdeadbeef80000000, 0x7fffffff, 0xffffffff80000000, 0xdeadbeef80000000

    TEST    7, "amoswap/amoadd/amoxor/amoand/amoor .d"
    AMOCHK  amoswap.d, 1, -1, 1, -1
    AMOCHK  amoadd.d,  0x7fffffffffffffff, 1, 0x7fffffffffffffff, 0x8000000000000000
    AMOCHK  amoadd.d,  -1, 1, -1, 0
    AMOCHK  amoxor.d,  0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0xf0f0f0f0f0f0f0f0
    AMOCHK  amoand.d,  0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0x0f000f000f000f00
    AMOCHK  amoor.d,   0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0xfff0fff0fff0fff0

    TEST    8, "amomin/amomax/amominu/amomaxu .d"
    AMOCHK  amomin.d,  5, -5, 5, -5
    AMOCHK  amomin.d,  0x7fffffffffffffff, 0x8000000000000000, 0x7fffffffffffffff, 0x8000000000000000
    AMOCHK  amomax.d,  -5, 3, -5, 3
    AMOCHK  amomax.d,  0x8000000000000000, -1, 0x8000000000000000, -1
    AMOCHK  amominu.d, -5, 3, -5, 3
    AMOCHK  amominu.d, 0x7fffffffffffffff, 0x8000000000000000, 0x7fffffffffffffff, 0x7fffffffffffffff
    AMOCHK  amomaxu.d, 3, -5, 3, -5
    AMOCHK  amomaxu.d, 0x8000000000000000, 0x7fffffffffffffff, 0x8000000000000000, 0x8000000000000000

    TEST    9, "rd = x0, rd = rs2, aq/rl forms"
    la      s0, cell
    li      t0, 40
    sd      t0, 0(s0)
    li      t1, 2
    amoadd.d x0, t1, (s0)
    ld      t0, 0(s0)
    CHECK   t0, 42
    li      t1, 7
    amoswap.d t1, t1, (s0)
    CHECK   t1, 42
    ld      t0, 0(s0)
    CHECK   t0, 7
    li      t1, 1
    amoadd.d.aq   t2, t1, (s0)
    amoadd.d.rl   t2, t1, (s0)
    amoadd.d.aqrl t2, t1, (s0)
    amoadd.w.aqrl t2, t1, (s0)
    CHECK   t2, 10
    ld      t0, 0(s0)
    CHECK   t0, 11

    TEST    10, "misaligned lr/amo trap (misaligned or access fault), sc fails"
    la      s0, cell
    addi    s1, s0, 2
    ARM_MTRAP
    lr.w    t0, (s1)
    CHECK_CAUSE_EITHER CAUSE_MISALIGNED_LOAD, CAUSE_LOAD_ACCESS
    /* a misaligned sc without a reservation may fail without trapping (QEMU does) */
    li      t1, 5
    sd      zero, 0(s0)
    sd      zero, 8(s0)
    ARM_MTRAP
    li      t0, 0
    sc.d    t0, t1, (s1)
    la      t5, m_armed
    ld      t6, 0(t5)
    sd      zero, 0(t5)
    beqz    t6, 3f                  /* trapped: t0 untouched */
    CHECK_NZ t0                     /* did not trap: must have failed */
    j       4f
3:  CHECK_CAUSE_EITHER CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS
4:  ld      t0, 0(s0)
    CHECK   t0, 0
    ld      t0, 8(s0)
    CHECK   t0, 0
    ARM_MTRAP
    amoadd.d t0, t1, (s1)
    CHECK_AMO_MISALIGNED
    addi    s1, s0, 4
    ARM_MTRAP
    amoswap.d t0, t1, (s1)
    CHECK_AMO_MISALIGNED
    LOAD_REC t0, m_rec, REC_TVAL
    CHECKR  t0, s1
    addi    s1, s0, 1
    ARM_MTRAP
    amoor.w t0, t1, (s1)
    CHECK_AMO_MISALIGNED

    j       pass

    .data
    .balign 64
cell:   .dword 0, 0
    .balign 4096
far_cell: .dword 0
