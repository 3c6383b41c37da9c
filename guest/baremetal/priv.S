/* Privilege levels: M -> S -> U with mret/sret, what S and U may not do,
   exception delegation (medeleg) and interrupt delegation (mideleg) to S,
   ecall from U handled in S, interrupt enables per privilege level, sret,
   mstatus.TSR/TVM. */
#include "common.h"

.macro CHECK_REC_STATUS rec, mask, expected
    LOAD_REC t5, \rec, REC_STATUS
    li      t6, \mask
    and     t5, t5, t6
    CHECK   t5, \expected
.endm

/* check that the recorded tval is the instruction word at `label` */
.macro CHECK_TVAL_INSN rec, label
    LOAD_REC t5, \rec, REC_TVAL
    la      t6, \label
    lwu     t6, 0(t6)
    CHECKR  t5, t6
.endm

    .text
main:
    PRINT   "priv: M/S/U, mret/sret, medeleg/mideleg, ecall from U in S\n"
    PMP_ALLOW_ALL
    li      a7, 0

    TEST    1, "mret to S; M-only CSRs and mret trap to M with MPP = S"
    MRET_TO 1, s_part1
s_part1:
    csrr    t0, sstatus                 /* allowed in S */
    ARM_MTRAP
1:  csrr    t0, mstatus
    EXPECT_MTRAP CAUSE_ILLEGAL, 1b
    CHECK_TVAL_INSN m_rec, 1b
    CHECK_REC_STATUS m_rec, MSTATUS_MPP, MSTATUS_MPP_S
    ARM_MTRAP
2:  mret
    EXPECT_MTRAP CAUSE_ILLEGAL, 2b

    TEST    2, "ecall from S goes to M with mcause 9"
    ARM_MTRAP
3:  ecall
    EXPECT_MTRAP CAUSE_ECALL_S, 3b
    GOTO_M  m_part3

m_part3:
    TEST    3, "sret to U; S CSRs and sret trap to M with MPP = U"
    li      t0, 1 << CAUSE_ECALL_U
    csrw    medeleg, t0
    li      t0, MIP_SSIP
    csrw    mideleg, t0
    MRET_TO 1, s_part3
s_part3:
    la      t0, u_part3
    csrw    sepc, t0
    li      t0, MSTATUS_SPP
    csrc    sstatus, t0
    li      t0, MSTATUS_SPIE
    csrs    sstatus, t0
    sret
u_part3:
    ARM_MTRAP
4:  csrr    t0, sstatus
    EXPECT_MTRAP CAUSE_ILLEGAL, 4b
    CHECK_TVAL_INSN m_rec, 4b
    CHECK_REC_STATUS m_rec, MSTATUS_MPP, 0
    ARM_MTRAP
5:  sret
    EXPECT_MTRAP CAUSE_ILLEGAL, 5b

    TEST    4, "ecall from U is delegated to S: scause 8, sepc, SPP = U"
    ARM_STRAP
6:  ecall
    EXPECT_STRAP CAUSE_ECALL_U, 6b
    CHECK_REC_STATUS s_rec, MSTATUS_SPP | MSTATUS_SPIE, MSTATUS_SPIE
    LOAD_REC t0, m_rec, REC_COUNT       /* and M saw nothing new */
    CHECK   t0, 5
    ARM_MTRAP                           /* the handler's sret came back to U */
7:  csrr    t0, sscratch
    EXPECT_MTRAP CAUSE_ILLEGAL, 7b
    GOTO_M  m_part5

m_part5:
    TEST    5, "delegated SSIP pending on entry to U is taken in S at once"
    li      t0, MIP_SSIP
    csrs    mie, t0                     /* sie.SSIE */
    li      t0, MSTATUS_SIE             /* SIE = 0: still taken in U */
    csrc    mstatus, t0
    li      t0, MIP_SSIP
    csrs    mip, t0
    MRET_TO 0, u_part5
u_part5:
    nop
    LOAD_REC t0, s_irq_rec, REC_COUNT
    CHECK   t0, 1
    LOAD_REC t0, s_irq_rec, REC_CAUSE
    CHECK   t0, IRQ(1)
    LOAD_REC t0, s_irq_rec, REC_EPC
    la      t1, u_part5
    CHECKR  t0, t1
    CHECK_REC_STATUS s_irq_rec, MSTATUS_SPP, 0
    LOAD_REC t0, m_irq_rec, REC_COUNT
    CHECK   t0, 0
    GOTO_M  m_part6

m_part6:
    TEST    6, "in S, SSIP waits for sstatus.SIE; sip.SSIP is writable by S"
    li      t0, MIP_MSIP
    csrs    mie, t0                     /* for test 7 */
    MRET_TO 1, s_part6
s_part6:
    li      t0, MIP_SSIP
    csrs    sip, t0
    nop
    nop
    LOAD_REC t0, s_irq_rec, REC_COUNT
    CHECK   t0, 1                       /* masked: SIE = 0 in S */
    csrsi   sstatus, MSTATUS_SIE
    nop
    csrci   sstatus, MSTATUS_SIE
    LOAD_REC t0, s_irq_rec, REC_COUNT
    CHECK   t0, 2
    CHECK_REC_STATUS s_irq_rec, MSTATUS_SPP | MSTATUS_SPIE, MSTATUS_SPP | MSTATUS_SPIE
    csrr    t0, sip
    andi    t0, t0, MIP_SSIP
    CHECK   t0, 0

    TEST    7, "M software interrupt preempts S although mstatus.MIE = 0"
    li      t0, CLINT_BASE
    li      t1, 1
    sw      t1, 0(t0)
    li      s5, 1000000
8:  LOAD_REC t0, m_irq_rec, REC_COUNT
    bnez    t0, 9f
    addi    s5, s5, -1
    bnez    s5, 8b
    j       fail
9:  LOAD_REC t0, m_irq_rec, REC_CAUSE
    CHECK   t0, IRQ(3)
    CHECK_REC_STATUS m_irq_rec, MSTATUS_MPP | MSTATUS_MIE, MSTATUS_MPP_S

    TEST    8, "sret: SIE <- SPIE, SPIE <- 1, SPP <- U"
    li      t0, MSTATUS_SPP | MSTATUS_SPIE
    csrs    sstatus, t0
    la      t0, 10f
    csrw    sepc, t0
    sret
    j       fail
10: csrr    t0, sstatus                 /* still in S: SPP was S */
    andi    t0, t0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE
    CHECK   t0, MSTATUS_SPIE | MSTATUS_SIE
    csrci   sstatus, MSTATUS_SIE
    GOTO_M  m_part9

m_part9:
    TEST    9, "mstatus.TSR makes sret trap, TVM makes satp/sfence.vma trap"
    li      t0, (1 << 22) | (1 << 20)   /* TSR | TVM */
    csrs    mstatus, t0
    MRET_TO 1, s_part9
s_part9:
    la      t0, 11f
    csrw    sepc, t0
    ARM_MTRAP
11: sret
    EXPECT_MTRAP CAUSE_ILLEGAL, 11b
    ARM_MTRAP
12: csrr    t0, satp
    EXPECT_MTRAP CAUSE_ILLEGAL, 12b
    ARM_MTRAP
13: sfence.vma
    EXPECT_MTRAP CAUSE_ILLEGAL, 13b
    GOTO_M  m_part10

m_part10:
    TEST    10, "a delegated exception raised in S is handled in S (SPP = S)"
    li      t0, (1 << 22) | (1 << 20)
    csrc    mstatus, t0
    li      t0, 1 << CAUSE_ILLEGAL
    csrs    medeleg, t0
    MRET_TO 1, s_part10
s_part10:
    csrr    t0, satp                    /* TVM is off again */
    ARM_STRAP
14: csrr    t0, mstatus
    EXPECT_STRAP CAUSE_ILLEGAL, 14b
    CHECK_TVAL_INSN s_rec, 14b
    CHECK_REC_STATUS s_rec, MSTATUS_SPP, MSTATUS_SPP
    LOAD_REC t0, m_rec, REC_COUNT
    CHECK   t0, 9
    j       pass                        /* ecall from S: the M handler reports */
