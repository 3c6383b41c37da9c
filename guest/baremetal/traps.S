/* M-mode traps: ecall, ebreak, illegal instructions (mtval = instruction bits),
   CSR instruction semantics, mret, counters, and mtvec vectored mode with CLINT
   timer and software interrupts (masking, wfi wake-up, priority). */
#include "common.h"

/* each vector slot logs its number, then enters the common handler */
.macro VEC_STUB slot
vec_stub_\slot:
    csrrw   sp, mscratch, sp
    sd      t0, 24(sp)
    sd      t1, 32(sp)
    la      t0, vec_log_n
    ld      t1, 0(t0)
    andi    t1, t1, 7
    slli    t1, t1, 3
    add     t1, t1, t0
    li      t0, \slot
    sd      t0, 8(t1)               /* vec_log[n & 7] = slot */
    la      t0, vec_log_n
    ld      t1, 0(t0)
    addi    t1, t1, 1
    sd      t1, 0(t0)
    ld      t1, 32(sp)
    ld      t0, 24(sp)
    csrrw   sp, mscratch, sp
    j       mtrap
.endm

/* wait (bounded) until the interrupt count in m_irq_rec reaches `n` */
.macro WAIT_IRQ_COUNT n
    li      s5, 20000000
.Lwait\@:
    LOAD_REC t5, m_irq_rec, REC_COUNT
    li      t6, \n
    bgeu    t5, t6, .Ldone\@
    addi    s5, s5, -1
    bnez    s5, .Lwait\@
    j       fail
.Ldone\@:
.endm

/* mtimecmp(hart 0) := mtime + delta */
.macro TIMER_IN delta
    li      t0, CLINT_MTIME
    ld      t1, 0(t0)
    li      t0, \delta
    add     t1, t1, t0
    li      t0, CLINT_MTIMECMP
    sd      t1, 0(t0)
.endm

/* reset the vector log */
.macro VEC_LOG_CLEAR
    la      t0, vec_log_n
    sd      zero, 0(t0)
.endm
/* check vec_log_n == n and vec_log[i] == slot */
.macro VEC_LOG_CHECK_N n
    LOAD_REC t0, vec_log_n, 0
    CHECK   t0, \n
.endm
.macro VEC_LOG_CHECK i, slot
    LOAD_REC t0, vec_log_n, (8 + 8 * \i)
    CHECK   t0, \slot
.endm

    .text
main:
    PRINT   "traps: exceptions, mtval, CSR ops, mret, vectored CLINT interrupts\n"
    li      a7, 0

    TEST    1, "ecall from M: mcause 11, mepc, mtval 0, MPP/MPIE"
    csrsi   mstatus, MSTATUS_MIE        /* mie = 0: nothing can interrupt */
    ARM_MTRAP
1:  ecall
    EXPECT_MTRAP CAUSE_ECALL_M, 1b
    LOAD_REC t0, m_rec, REC_TVAL
    CHECK   t0, 0
    LOAD_REC t0, m_rec, REC_STATUS
    li      t1, MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE
    and     t0, t0, t1
    CHECK   t0, MSTATUS_MPP | MSTATUS_MPIE  /* MIE was cleared on entry */
    csrr    t0, mstatus
    andi    t0, t0, MSTATUS_MIE
    CHECK   t0, MSTATUS_MIE                  /* mret restored it */
    csrci   mstatus, MSTATUS_MIE

    TEST    2, "ebreak: mcause 3, mepc"
    ARM_MTRAP
2:  ebreak
    EXPECT_MTRAP CAUSE_BREAKPOINT, 2b

    TEST    3, "illegal instruction: mcause 2, mtval = instruction bits"
    ARM_MTRAP
3:  .word   0xfe000033                  /* OP with funct7 = 0x7f: not an instruction */
    EXPECT_MTRAP CAUSE_ILLEGAL, 3b
    LOAD_REC t0, m_rec, REC_TVAL
    CHECK   t0, 0xfe000033
    ARM_MTRAP
4:  .word   0xffffffbf                  /* AMO major opcode, reserved funct */
    EXPECT_MTRAP CAUSE_ILLEGAL, 4b
    LOAD_REC t0, m_rec, REC_TVAL
    CHECK   t0, 0xffffffbf
    ARM_MTRAP
5:  .word   0                           /* all-zero: defined illegal */
    EXPECT_MTRAP CAUSE_ILLEGAL, 5b
    LOAD_REC t0, m_rec, REC_TVAL
    CHECK   t0, 0

    TEST    4, "illegal: write to a read-only CSR, FP op while mstatus.FS = Off"
    li      t1, 0x55
    ARM_MTRAP
6:  csrw    mvendorid, t1
    EXPECT_MTRAP CAUSE_ILLEGAL, 6b
    LOAD_REC t0, m_rec, REC_TVAL
    la      t1, 6b
    lwu     t1, 0(t1)
    CHECKR  t0, t1
    li      t0, MSTATUS_FS
    csrc    mstatus, t0
    ARM_MTRAP
7:  fadd.d  ft0, ft1, ft2
    EXPECT_MTRAP CAUSE_ILLEGAL, 7b
    LOAD_REC t0, m_rec, REC_TVAL
    la      t1, 7b
    lwu     t1, 0(t1)
    CHECKR  t0, t1
    ARM_MTRAP
8:  csrr    t0, fcsr
    EXPECT_MTRAP CAUSE_ILLEGAL, 8b

    TEST    5, "CSR instructions: old value, set/clear, x0 forms"
    csrr    s0, sscratch                /* (mscratch is the trap handler's) */
    li      t0, 0x0f0f
    csrw    sscratch, t0
    li      t1, 0xf000
    csrrs   t2, sscratch, t1
    CHECK   t2, 0x0f0f
    csrrc   t2, sscratch, 0x0f
    CHECK   t2, 0xff0f
    csrrsi  t2, sscratch, 0x1f
    CHECK   t2, 0xff00
    csrrci  t2, sscratch, 0x10
    CHECK   t2, 0xff1f
    csrrwi  t2, sscratch, 7
    CHECK   t2, 0xff0f
    csrrs   t2, sscratch, x0            /* reads without writing */
    CHECK   t2, 7
    li      t0, -1
    csrrw   t2, sscratch, t0
    CHECK   t2, 7
    CHECK_CSR sscratch, -1
    csrw    sscratch, s0

    TEST    6, "mret: MIE <- MPIE, MPIE <- 1, MPP <- U, pc <- mepc"
    li      t0, MSTATUS_MPP | MSTATUS_MPIE
    csrs    mstatus, t0
    la      t0, 9f
    csrw    mepc, t0
    mret
    j       fail
9:  csrr    t0, mstatus
    li      t1, MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE
    and     t0, t0, t1
    CHECK   t0, MSTATUS_MPIE | MSTATUS_MIE
    csrci   mstatus, MSTATUS_MIE
    li      t0, MSTATUS_MPP             /* MPIE = 0 -> MIE = 0 */
    csrs    mstatus, t0
    li      t0, MSTATUS_MPIE
    csrc    mstatus, t0
    la      t0, 10f
    csrw    mepc, t0
    mret
10: csrr    t0, mstatus
    andi    t0, t0, MSTATUS_MIE | MSTATUS_MPIE
    CHECK   t0, MSTATUS_MPIE

    TEST    7, "counters: mcycle, minstret, time advance"
    csrr    s0, mcycle
    csrr    s1, minstret
    rdtime  s2
    li      t0, 100000
11: addi    t0, t0, -1
    bnez    t0, 11b
    csrr    t0, minstret
    sub     t0, t0, s1
    li      t1, 1000                    /* (QEMU without icount only approximates it) */
    bltu    t0, t1, fail_far
    csrr    t0, mcycle
    bgeu    s0, t0, fail_far
    rdtime  t0
    bgeu    s2, t0, fail_far
    li      t1, CLINT_MTIME             /* time CSR mirrors the CLINT mtime */
    ld      t1, 0(t1)
    bltu    t1, t0, fail_far

    TEST    8, "mtvec vectored mode: exceptions still go to the base"
    la      t0, vec_table
    ori     t0, t0, 1
    csrw    mtvec, t0
    csrr    t1, mtvec
    CHECKR  t0, t1
    VEC_LOG_CLEAR
    ARM_MTRAP
12: ecall
    EXPECT_MTRAP CAUSE_ECALL_M, 12b
    VEC_LOG_CHECK_N 1
    VEC_LOG_CHECK 0, 0

    TEST    9, "timer interrupt through vector slot 7"
    VEC_LOG_CLEAR
    TIMER_IN 1000
    li      t0, MIP_MTIP
    csrs    mie, t0
    csrsi   mstatus, MSTATUS_MIE
13: WAIT_IRQ_COUNT 1
    csrci   mstatus, MSTATUS_MIE
    LOAD_REC t0, m_irq_rec, REC_CAUSE
    CHECK   t0, IRQ(7)
    VEC_LOG_CHECK_N 1
    VEC_LOG_CHECK 0, 7
    csrr    t0, mip
    andi    t0, t0, MIP_MTIP
    CHECK   t0, 0                       /* handler pushed mtimecmp away */
    LOAD_REC t0, m_irq_rec, REC_STATUS
    andi    t0, t0, MSTATUS_MPIE
    CHECK   t0, MSTATUS_MPIE

    TEST    10, "pending but masked timer: mip.MTIP set, wfi wakes, no trap"
    VEC_LOG_CLEAR
    TIMER_IN 2000
    li      s5, 1000000
14: wfi                                 /* MTIE = 1, MIE = 0: wakes, no trap */
    csrr    t0, mip
    andi    t0, t0, MIP_MTIP
    bnez    t0, 15f
    addi    s5, s5, -1
    bnez    s5, 14b
    j       fail
15: LOAD_REC t0, m_irq_rec, REC_COUNT
    CHECK   t0, 1
    li      t0, MIP_MTIP                /* MIE = 1 but MTIE = 0: still no trap */
    csrc    mie, t0
    csrsi   mstatus, MSTATUS_MIE
    nop
    nop
    LOAD_REC t0, m_irq_rec, REC_COUNT
    CHECK   t0, 1
    li      t0, MIP_MTIP                /* unmask: taken at once */
    csrs    mie, t0
    nop
    csrci   mstatus, MSTATUS_MIE
    LOAD_REC t0, m_irq_rec, REC_COUNT
    CHECK   t0, 2
    VEC_LOG_CHECK_N 1
    VEC_LOG_CHECK 0, 7

    TEST    11, "software interrupt (msip) through vector slot 3"
    VEC_LOG_CLEAR
    li      t0, MIP_MSIP
    csrs    mie, t0
    li      t0, CLINT_BASE
    li      t1, 1
    sw      t1, 0(t0)
    csrsi   mstatus, MSTATUS_MIE
    WAIT_IRQ_COUNT 3
    csrci   mstatus, MSTATUS_MIE
    LOAD_REC t0, m_irq_rec, REC_CAUSE
    CHECK   t0, IRQ(3)
    VEC_LOG_CHECK_N 1
    VEC_LOG_CHECK 0, 3
    csrr    t0, mip
    andi    t0, t0, MIP_MSIP
    CHECK   t0, 0

    TEST    12, "priority: software before timer when both pending"
    VEC_LOG_CLEAR
    li      t0, CLINT_MTIMECMP
    sd      zero, 0(t0)                 /* timer pending now */
    li      t0, CLINT_BASE
    li      t1, 1
    sw      t1, 0(t0)                   /* software pending now */
    li      s5, 1000000
16: csrr    t0, mip
    andi    t0, t0, MIP_MSIP | MIP_MTIP
    li      t1, MIP_MSIP | MIP_MTIP
    beq     t0, t1, 17f
    addi    s5, s5, -1
    bnez    s5, 16b
    j       fail
17: csrsi   mstatus, MSTATUS_MIE
    WAIT_IRQ_COUNT 5
    csrci   mstatus, MSTATUS_MIE
    VEC_LOG_CHECK_N 2
    VEC_LOG_CHECK 0, 3
    VEC_LOG_CHECK 1, 7

    csrw    mie, zero
    la      t0, mtrap
    csrw    mtvec, t0
    j       pass

fail_far:
    j       fail

    .balign 256
vec_table:
    .irp slot, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    j       vec_stub_\slot
    .endr
    .irp slot, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    VEC_STUB \slot
    .endr

    .data
    .balign 8
vec_log_n:  .dword 0
vec_log:    .dword 0, 0, 0, 0, 0, 0, 0, 0
