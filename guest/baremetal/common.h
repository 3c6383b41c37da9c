/*
 * Shared start-up, trap handlers, reporting and check macros for the HostVM
 * bare-metal test programs. Each program does `#include "common.h"` and then
 * defines `main` (hart 0, M-mode). A program that uses other harts defines
 * HAS_SECONDARY before the include and provides `secondary_main`.
 *
 * Reporting: the sifive,test device at 0x10_0000 (0x5555 = pass; (N << 16) |
 * 0x3333 = fail with test case N) and text on the NS16550A UART.
 *
 * Register conventions inside the programs:
 *   gp      number of the current test case (reported on failure, 1..255)
 *   t3..t6  scratch for the macros below (PRINT, TEST, CHECK*, ARM_*);
 *           test code keeps its live values in t0..t2, a*, s*.
 * All code is assembled without compressed instructions (.option norvc), so a
 * trap handler can step over a faulting instruction by adding 4.
 */

    .option norvc

#define UART_BASE       0x10000000
#define UART_THR        0
#define UART_LSR        5
#define UART_LSR_THRE   0x20

#define TEST_BASE       0x100000
#define TEST_PASS       0x5555
#define TEST_FAIL       0x3333

#define CLINT_BASE      0x2000000
#define CLINT_MTIMECMP  0x2004000
#define CLINT_MTIME     0x200BFF8

#define MAX_HARTS       4

/* ecall services (a7) understood by the M-mode handler; a0 is the argument. */
#define SYS_PASS        0x5A01      /* report success and power off */
#define SYS_FAIL        0x5A02      /* report failure of test case a0 */
#define SYS_TO_M        0x5A03      /* continue in M-mode at address a0 */
#define SYS_S_UNEXPECTED 0x5A04     /* the S handler saw a trap nobody armed */

#define MSTATUS_SIE     (1 << 1)
#define MSTATUS_MIE     (1 << 3)
#define MSTATUS_SPIE    (1 << 5)
#define MSTATUS_MPIE    (1 << 7)
#define MSTATUS_SPP     (1 << 8)
#define MSTATUS_MPP     (3 << 11)
#define MSTATUS_MPP_S   (1 << 11)
#define MSTATUS_FS      (3 << 13)
#define MSTATUS_MPRV    (1 << 17)
#define MSTATUS_SUM     (1 << 18)
#define MSTATUS_MXR     (1 << 19)

#define MIP_SSIP        (1 << 1)
#define MIP_MSIP        (1 << 3)
#define MIP_STIP        (1 << 5)
#define MIP_MTIP        (1 << 7)

#define CAUSE_MISALIGNED_FETCH  0
#define CAUSE_FETCH_ACCESS      1
#define CAUSE_ILLEGAL           2
#define CAUSE_BREAKPOINT        3
#define CAUSE_MISALIGNED_LOAD   4
#define CAUSE_LOAD_ACCESS       5
#define CAUSE_MISALIGNED_STORE  6
#define CAUSE_STORE_ACCESS      7
#define CAUSE_ECALL_U           8
#define CAUSE_ECALL_S           9
#define CAUSE_ECALL_M           11
#define CAUSE_FETCH_PAGE_FAULT  12
#define CAUSE_LOAD_PAGE_FAULT   13
#define CAUSE_STORE_PAGE_FAULT  15
#define IRQ(n)                  (0x8000000000000000 | (n))

/* Layout of a trap record (m_rec, m_irq_rec, s_rec, s_irq_rec). */
#define REC_CAUSE   0
#define REC_EPC     8
#define REC_TVAL    16
#define REC_STATUS  24
#define REC_COUNT   32

/* ---------------------------------------------------------------- macros */

/* Print a string literal on the UART. Clobbers t3..t6. */
.macro PRINT str
    .pushsection .rodata.str, "aMS", @progbits, 1
.Lstr\@: .asciz "\str"
    .popsection
    la      t5, .Lstr\@
    jal     t3, puts
.endm

/* Start test case `num` (1..255) and print its description. */
.macro TEST num, desc
    li      gp, \num
    PRINT   "  [\num] \desc\n"
.endm

/* Fail the current test case unless reg == expected (64-bit immediate). */
.macro CHECK reg, expected
    li      t6, \expected
    beq     \reg, t6, .Lck\@
    j       fail
.Lck\@:
.endm

/* Fail the current test case unless reg1 == reg2. */
.macro CHECKR reg1, reg2
    beq     \reg1, \reg2, .Lck\@
    j       fail
.Lck\@:
.endm

/* Fail the current test case if reg == 0. */
.macro CHECK_NZ reg
    bnez    \reg, .Lck\@
    j       fail
.Lck\@:
.endm

/* Fail the current test case unless the CSR holds `expected`. */
.macro CHECK_CSR csr, expected
    csrr    t5, \csr
    CHECK   t5, \expected
.endm

/*
 * Allow exactly one exception to be taken by the M (or S) handler. An
 * exception that arrives unarmed is reported as a failure with its cause,
 * epc and tval, so a CPU bug shows up where it happens.
 */
.macro ARM_MTRAP
    la      t6, m_armed
    sd      t6, 0(t6)
.endm
.macro ARM_STRAP
    la      t6, s_armed
    sd      t6, 0(t6)
.endm

/* Check that the armed exception happened with this cause at this label. */
.macro EXPECT_MTRAP cause, epc_label
    la      t5, m_armed
    ld      t5, 0(t5)
    CHECK   t5, 0
    la      t5, m_rec
    ld      t5, REC_CAUSE(t5)
    CHECK   t5, \cause
    la      t5, m_rec
    ld      t5, REC_EPC(t5)
    la      t6, \epc_label
    CHECKR  t5, t6
.endm
.macro EXPECT_STRAP cause, epc_label
    la      t5, s_armed
    ld      t5, 0(t5)
    CHECK   t5, 0
    la      t5, s_rec
    ld      t5, REC_CAUSE(t5)
    CHECK   t5, \cause
    la      t5, s_rec
    ld      t5, REC_EPC(t5)
    la      t6, \epc_label
    CHECKR  t5, t6
.endm

/* Load one field of a trap record into reg (clobbers t6). */
.macro LOAD_REC reg, rec, field
    la      t6, \rec
    ld      \reg, \field(t6)
.endm

/* Leave M-mode for `mode` (0 = U, 1 = S, 3 = M) at `label` with mret. */
.macro MRET_TO mode, label
    li      t0, MSTATUS_MPP
    csrc    mstatus, t0
    li      t0, (\mode << 11)
    csrs    mstatus, t0
    la      t0, \label
    csrw    mepc, t0
    mret
.endm

/* From any mode: continue in M-mode at `label` (through the M handler).
   Clobbers a0; a7 is zero afterwards. */
.macro GOTO_M label
    la      a0, \label
    li      a7, SYS_TO_M
    ecall
.endm

/*
 * Give S and U access to all memory through PMP entry 0 (QEMU denies them
 * everything while no entry matches). A hart without PMP traps on the CSR
 * write; that lands on the label below and is harmless.
 */
.macro PMP_ALLOW_ALL
    la      t0, .Lpmp_done\@
    csrrw   t1, mtvec, t0
    li      t0, -1
    csrw    pmpaddr0, t0
    li      t0, 0x1f            /* NAPOT, R W X */
    csrw    pmpcfg0, t0
    .balign 4
.Lpmp_done\@:
    csrw    mtvec, t1
.endm

/* ------------------------------------------------------------- start-up */

    .section .text.init, "ax", @progbits
    .globl  _start
_start:
    csrr    a0, mhartid
    li      t0, MAX_HARTS
    bgeu    a0, t0, park
    /* per-hart stack (4 KiB) and trap save areas (256 bytes each) */
    la      sp, stacks_top
    slli    t0, a0, 12
    sub     sp, sp, t0
    la      t0, m_save
    slli    t1, a0, 8
    add     t0, t0, t1
    csrw    mscratch, t0
    la      t0, s_save
    add     t0, t0, t1
    csrw    sscratch, t0
    la      t0, mtrap
    csrw    mtvec, t0
    la      t0, strap
    csrw    stvec, t0
    csrw    mie, zero
    csrw    mideleg, zero
    csrw    medeleg, zero
    csrw    satp, zero
    csrw    mstatus, zero
    li      gp, 0
    bnez    a0, secondary_entry

    /* hart 0: clear .bss (other harts only touch it once woken) */
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:  PRINT   "\n"
    j       main

secondary_entry:
#ifdef HAS_SECONDARY
    j       secondary_main
#endif
park:
    csrw    mie, zero
1:  wfi
    j       1b

/* ---------------------------------------------------------- reporting */

    .text
    .globl  fail
fail:                               /* any mode: fail test case gp */
    mv      a0, gp
    li      a7, SYS_FAIL
    ecall
1:  j       1b

    .globl  pass
pass:                               /* any mode: report success */
    li      a7, SYS_PASS
    ecall
1:  j       1b

/* puts: print the NUL-terminated string at t5. Link register t3; clobbers t4..t6. */
puts:
1:  lbu     t4, 0(t5)
    beqz    t4, 3f
2:  li      t6, UART_BASE
    lbu     t6, UART_LSR(t6)
    andi    t6, t6, UART_LSR_THRE
    beqz    t6, 2b
    li      t6, UART_BASE
    sb      t4, UART_THR(t6)
    addi    t5, t5, 1
    j       1b
3:  jr      t3

/* puthex: print t0 as 0x + 16 hex digits. Link register t1; clobbers t2, a1..a3, t3..t6. */
puthex:
    mv      a1, t0
    PRINT   "0x"
    li      a2, 60
1:  srl     t2, a1, a2
    andi    t2, t2, 15
    li      a3, 10
    blt     t2, a3, 2f
    addi    t2, t2, 'a' - 10 - '0'
2:  addi    t2, t2, '0'
3:  li      t6, UART_BASE
    lbu     t6, UART_LSR(t6)
    andi    t6, t6, UART_LSR_THRE
    beqz    t6, 3b
    li      t6, UART_BASE
    sb      t2, UART_THR(t6)
    addi    a2, a2, -4
    bgez    a2, 1b
    jr      t1

/* Terminal paths, entered in M-mode. */
report_pass:
    PRINT   "PASS\n"
    li      t0, TEST_BASE
    li      t1, TEST_PASS
    sw      t1, 0(t0)
1:  wfi
    j       1b

report_fail:
    PRINT   "FAIL: test case "
    mv      t0, gp
    jal     t1, puthex
    PRINT   "\n"
    andi    gp, gp, 0xff        /* the exit code of QEMU is the low byte */
    bnez    gp, 1f
    li      gp, 255
1:  slli    t0, gp, 16
    li      t1, TEST_FAIL
    or      t1, t0, t1
    li      t0, TEST_BASE
    sw      t1, 0(t0)
2:  wfi
    j       2b

report_unexpected_m:
    PRINT   "unexpected M trap: mcause="
    csrr    t0, mcause
    jal     t1, puthex
    PRINT   " mepc="
    csrr    t0, mepc
    jal     t1, puthex
    PRINT   " mtval="
    csrr    t0, mtval
    jal     t1, puthex
    PRINT   "\n"
    j       report_fail

report_unexpected_s:
    PRINT   "unexpected S trap: scause="
    csrr    t0, scause
    jal     t1, puthex
    PRINT   " sepc="
    csrr    t0, sepc
    jal     t1, puthex
    PRINT   " stval="
    csrr    t0, stval
    jal     t1, puthex
    PRINT   "\n"
    j       report_fail

/* -------------------------------------------------------- M trap handler */

    .balign 64
    .globl  mtrap
mtrap:
    csrrw   sp, mscratch, sp
    sd      t0, 0(sp)
    sd      t1, 8(sp)
    sd      t2, 16(sp)
    csrr    t0, mcause
    bltz    t0, .Lmt_interrupt
    li      t1, CAUSE_ECALL_U
    beq     t0, t1, .Lmt_ecall
    li      t1, CAUSE_ECALL_S
    beq     t0, t1, .Lmt_ecall
    li      t1, CAUSE_ECALL_M
    beq     t0, t1, .Lmt_ecall
.Lmt_exception:
    la      t1, m_armed
    ld      t2, 0(t1)
    beqz    t2, report_unexpected_m
    sd      zero, 0(t1)
    la      t1, m_rec
    sd      t0, REC_CAUSE(t1)
    csrr    t2, mepc
    sd      t2, REC_EPC(t1)
    csrr    t2, mtval
    sd      t2, REC_TVAL(t1)
    csrr    t2, mstatus
    sd      t2, REC_STATUS(t1)
    ld      t2, REC_COUNT(t1)
    addi    t2, t2, 1
    sd      t2, REC_COUNT(t1)
    /* a faulting fetch resumes at ra (the test jumped with jalr ra); others step over */
    beqz    t0, .Lmt_resume_ra
    li      t1, CAUSE_FETCH_ACCESS
    beq     t0, t1, .Lmt_resume_ra
    li      t1, CAUSE_FETCH_PAGE_FAULT
    beq     t0, t1, .Lmt_resume_ra
    csrr    t2, mepc
    addi    t2, t2, 4
    csrw    mepc, t2
    j       .Lmt_return
.Lmt_resume_ra:
    csrw    mepc, ra
.Lmt_return:
    ld      t0, 0(sp)
    ld      t1, 8(sp)
    ld      t2, 16(sp)
    csrrw   sp, mscratch, sp
    mret

.Lmt_ecall:
    li      t1, SYS_PASS
    beq     a7, t1, report_pass
    li      t1, SYS_FAIL
    beq     a7, t1, .Lmt_fail
    li      t1, SYS_TO_M
    beq     a7, t1, .Lmt_to_m
    li      t1, SYS_S_UNEXPECTED
    beq     a7, t1, report_unexpected_s
    j       .Lmt_exception
.Lmt_fail:
    mv      gp, a0
    j       report_fail
.Lmt_to_m:
    csrw    mepc, a0
    li      a7, 0                   /* so a later plain ecall is not a service */
    li      t1, MSTATUS_MPP
    csrs    mstatus, t1
    j       .Lmt_return

    /* interrupts: record, then silence the source so mret does not re-enter */
.Lmt_interrupt:
    la      t1, m_irq_rec
    sd      t0, REC_CAUSE(t1)
    csrr    t2, mepc
    sd      t2, REC_EPC(t1)
    csrr    t2, mtval
    sd      t2, REC_TVAL(t1)
    csrr    t2, mstatus
    sd      t2, REC_STATUS(t1)
    ld      t2, REC_COUNT(t1)
    addi    t2, t2, 1
    sd      t2, REC_COUNT(t1)
    slli    t0, t0, 1
    srli    t0, t0, 1
    li      t1, 3
    beq     t0, t1, .Lmt_msi
    li      t1, 7
    beq     t0, t1, .Lmt_mti
    li      t1, 1
    beq     t0, t1, .Lmt_ssi
    li      t1, 5
    beq     t0, t1, .Lmt_sti
    li      t1, 1               /* anything else: mask it */
    sll     t1, t1, t0
    csrc    mie, t1
    j       .Lmt_return
.Lmt_msi:
    csrr    t2, mhartid
    slli    t2, t2, 2
    li      t1, CLINT_BASE
    add     t1, t1, t2
    sw      zero, 0(t1)
    j       .Lmt_return
.Lmt_mti:
    csrr    t2, mhartid
    slli    t2, t2, 3
    li      t1, CLINT_MTIMECMP
    add     t1, t1, t2
    li      t2, -1
    sd      t2, 0(t1)
    j       .Lmt_return
.Lmt_ssi:
    li      t1, MIP_SSIP
    csrc    mip, t1
    j       .Lmt_return
.Lmt_sti:
    li      t1, MIP_STIP
    csrc    mip, t1
    j       .Lmt_return

/* -------------------------------------------------------- S trap handler */

    .balign 64
    .globl  strap
strap:
    csrrw   sp, sscratch, sp
    sd      t0, 0(sp)
    sd      t1, 8(sp)
    sd      t2, 16(sp)
    csrr    t0, scause
    bltz    t0, .Lst_interrupt
    li      t1, CAUSE_ECALL_U
    bne     t0, t1, .Lst_exception
    li      t1, SYS_PASS            /* services asked from U go on to M */
    beq     a7, t1, .Lst_forward
    li      t1, SYS_FAIL
    beq     a7, t1, .Lst_forward
    li      t1, SYS_TO_M
    beq     a7, t1, .Lst_forward
.Lst_exception:
    la      t1, s_armed
    ld      t2, 0(t1)
    beqz    t2, .Lst_unexpected
    sd      zero, 0(t1)
    la      t1, s_rec
    sd      t0, REC_CAUSE(t1)
    csrr    t2, sepc
    sd      t2, REC_EPC(t1)
    csrr    t2, stval
    sd      t2, REC_TVAL(t1)
    csrr    t2, sstatus
    sd      t2, REC_STATUS(t1)
    ld      t2, REC_COUNT(t1)
    addi    t2, t2, 1
    sd      t2, REC_COUNT(t1)
    beqz    t0, .Lst_resume_ra
    li      t1, CAUSE_FETCH_ACCESS
    beq     t0, t1, .Lst_resume_ra
    li      t1, CAUSE_FETCH_PAGE_FAULT
    beq     t0, t1, .Lst_resume_ra
    csrr    t2, sepc
    addi    t2, t2, 4
    csrw    sepc, t2
    j       .Lst_return
.Lst_resume_ra:
    csrw    sepc, ra
.Lst_return:
    ld      t0, 0(sp)
    ld      t1, 8(sp)
    ld      t2, 16(sp)
    csrrw   sp, sscratch, sp
    sret
.Lst_forward:
    ld      t0, 0(sp)
    ld      t1, 8(sp)
    ld      t2, 16(sp)
    csrrw   sp, sscratch, sp
    ecall
1:  j       1b
.Lst_unexpected:
    mv      a0, gp
    li      a7, SYS_S_UNEXPECTED
    ecall
1:  j       1b

.Lst_interrupt:
    la      t1, s_irq_rec
    sd      t0, REC_CAUSE(t1)
    csrr    t2, sepc
    sd      t2, REC_EPC(t1)
    csrr    t2, stval
    sd      t2, REC_TVAL(t1)
    csrr    t2, sstatus
    sd      t2, REC_STATUS(t1)
    ld      t2, REC_COUNT(t1)
    addi    t2, t2, 1
    sd      t2, REC_COUNT(t1)
    slli    t0, t0, 1
    srli    t0, t0, 1
    li      t1, 1
    beq     t0, t1, .Lst_ssi
    li      t1, 1               /* anything else: mask it in sie */
    sll     t1, t1, t0
    csrc    sie, t1
    j       .Lst_return
.Lst_ssi:
    li      t1, MIP_SSIP
    csrc    sip, t1
    j       .Lst_return

/* ----------------------------------------------------------------- data */

    .data
    .balign 8
    .globl  m_rec, m_irq_rec, s_rec, s_irq_rec, m_armed, s_armed
m_rec:      .dword -1, 0, 0, 0, 0
m_irq_rec:  .dword -1, 0, 0, 0, 0
s_rec:      .dword -1, 0, 0, 0, 0
s_irq_rec:  .dword -1, 0, 0, 0, 0
m_armed:    .dword 0
s_armed:    .dword 0

    .bss
    .balign 16
m_save:     .skip 256 * MAX_HARTS
s_save:     .skip 256 * MAX_HARTS
stacks:     .skip 4096 * MAX_HARTS
stacks_top:

    .text
