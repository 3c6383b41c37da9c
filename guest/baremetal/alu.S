/* Integer ALU, branches, jumps and the M extension (incl. division edge cases). */
#include "common.h"

/* rd = op(a, b) on t0, t1 -> t2; compare with expected */
.macro RR op, a, b, expected
    li      t0, \a
    li      t1, \b
    \op     t2, t0, t1
    CHECK   t2, \expected
.endm

/* rd = op(a, imm) */
.macro RI op, a, imm, expected
    li      t0, \a
    \op     t2, t0, \imm
    CHECK   t2, \expected
.endm

/* a branch that must be taken / not taken */
.macro TAKEN br, a, b
    li      t0, \a
    li      t1, \b
    \br     t0, t1, .Ltk\@
    j       fail
.Ltk\@:
.endm
.macro NOT_TAKEN br, a, b
    li      t0, \a
    li      t1, \b
    \br     t0, t1, .Lnt\@
    j       .Lnt_ok\@
.Lnt\@:
    j       fail
.Lnt_ok\@:
.endm

    .text
main:
    PRINT   "alu: integer ALU, branches, jumps, M extension\n"

    TEST    1, "add/sub/addi with wrap-around"
    RR      add, 1, 2, 3
    RR      add, 0x7fffffffffffffff, 1, 0x8000000000000000
    RR      add, -1, 1, 0
    RR      sub, 0, 1, -1
    RR      sub, 0x8000000000000000, 1, 0x7fffffffffffffff
    RI      addi, 5, -6, -1
    RI      addi, 0x7fffffffffffffff, 2047, 0x80000000000007fe
    RI      addi, 0, -2048, -2048

    TEST    2, "32-bit ops sign-extend their result"
    RR      addw, 0x7fffffff, 1, 0xffffffff80000000
    RR      addw, 0xffffffff00000001, 0x00000000ffffffff, 0
    RR      subw, 0, 1, -1
    RR      subw, 0x80000000, 1, 0x7fffffff
    RI      addiw, 0x7fffffff, 1, 0xffffffff80000000
    RI      addiw, 0x123456789, 0, 0x23456789
    RI      addiw, 0xffffffff, 0, -1            /* sext.w */

    TEST    3, "logic ops and immediates"
    RR      and, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0x0f000f000f000f00
    RR      or,  0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xfff0fff0fff0fff0
    RR      xor, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0
    RI      andi, 0x123456789abcdef0, -16, 0x123456789abcdef0
    RI      andi, 0x123456789abcdef0, 0x0ff, 0xf0
    RI      ori, 0, -1, -1
    RI      xori, 0x00ff, -1, 0xffffffffffffff00  /* not */

    TEST    4, "shifts use only the low 6 (or 5) bits of the amount"
    RR      sll, 1, 63, 0x8000000000000000
    RR      sll, 1, 64, 1
    RR      sll, 1, 65, 2
    RR      srl, 0x8000000000000000, 63, 1
    RR      sra, 0x8000000000000000, 63, -1
    RR      sra, 0x8000000000000000, 127, -1
    RI      slli, 0x0f, 60, 0xf000000000000000
    RI      srli, -1, 60, 0xf
    RI      srai, 0x8000000000000000, 4, 0xf800000000000000
    RR      sllw, 1, 31, 0xffffffff80000000
    RR      sllw, 1, 32, 1
    RR      srlw, 0xffffffff80000000, 31, 1
    RR      srlw, 0xffffffff80000000, 0, 0xffffffff80000000
    RR      sraw, 0x0000000080000000, 31, -1
    RR      sraw, 0xffffffff7fffffff, 33, 0x3fffffff
    RI      slliw, 0x0000000100000001, 31, 0xffffffff80000000
    RI      srliw, 0xffffffff80000000, 4, 0x08000000
    RI      sraiw, 0x0000000080000000, 4, 0xfffffffff8000000

    TEST    5, "set-less-than signed and unsigned"
    RR      slt, -1, 0, 1
    RR      slt, 0, -1, 0
    RR      sltu, -1, 0, 0
    RR      sltu, 0, -1, 1
    RR      slt, 0x8000000000000000, 0x7fffffffffffffff, 1
    RI      slti, -5, -4, 1
    RI      sltiu, 5, -1, 1          /* imm sign-extends, then compares unsigned */
    RI      sltiu, 0, 1, 1           /* seqz */
    RI      sltiu, 7, 1, 0

    TEST    6, "lui and auipc"
    lui     t0, 0x80000
    CHECK   t0, 0xffffffff80000000
    lui     t0, 0x7ffff
    CHECK   t0, 0x7ffff000
1:  auipc   t0, 0
    la      t1, 1b
    CHECKR  t0, t1
2:  auipc   t0, 1
    la      t1, 2b
    li      t2, 0x1000
    add     t1, t1, t2
    CHECKR  t0, t1
    li      x0, 5                    /* x0 stays zero */
    CHECK   x0, 0

    TEST    7, "branches: signed and unsigned edges"
    TAKEN     beq, 5, 5
    NOT_TAKEN beq, 5, 6
    TAKEN     bne, 5, 6
    NOT_TAKEN bne, -1, -1
    TAKEN     blt, -1, 0
    NOT_TAKEN blt, 0, -1
    NOT_TAKEN blt, 3, 3
    TAKEN     bge, 3, 3
    TAKEN     bge, 0, 0x8000000000000000
    NOT_TAKEN bge, 0x8000000000000000, 0
    TAKEN     bltu, 0, -1
    NOT_TAKEN bltu, -1, 0
    TAKEN     bgeu, -1, 0
    NOT_TAKEN bgeu, 0x7fffffffffffffff, 0x8000000000000000
    /* a backward branch loop */
    li      t0, 10
    li      t1, 0
3:  addi    t1, t1, 3
    addi    t0, t0, -1
    bnez    t0, 3b
    CHECK   t1, 30

    TEST    8, "jal/jalr link values and jalr clearing bit 0"
    jal     t0, 4f
5:  j       fail
4:  la      t1, 5b
    CHECKR  t0, t1
    la      t1, 6f
    addi    t1, t1, 1                /* odd target: jalr clears bit 0 */
    jalr    t0, 0(t1)
7:  j       fail
6:  la      t1, 7b
    CHECKR  t0, t1
    la      t1, 8f - 16
    jalr    t0, 16(t1)               /* offset added before the jump */
    j       fail
8:  la      t1, 9f
    jalr    t1, 0(t1)                /* rd == rs1: target uses the old value */
9:  la      t2, 9b
    CHECKR  t1, t2

    TEST    9, "mul, mulh, mulhsu, mulhu, mulw"
    RR      mul, 0x123456789abcdef0, -0x0fedcba987654321, 0xddc927701a9e7310
    RR      mulh, 0x123456789abcdef0, -0x0fedcba987654321, 0xfede05ff528828bd
    RR      mulhu, -1, -1, 0xfffffffffffffffe
    RR      mulh, 0x8000000000000000, 0x8000000000000000, 0x4000000000000000
    RR      mulh, -1, -1, 0
    RR      mulhsu, -1, -1, -1
    RR      mulhsu, 0x8000000000000000, 2, -1
    RR      mulhsu, 2, 0x8000000000000000, 1
    RR      mulw, 0x7fffffff, 2, 0xfffffffffffffffe
    RR      mulw, 0x100000000, 0x100000000, 0
    RR      mulw, 0xffffffff00010000, 0x10000, 0

    TEST    10, "div/divu/rem/remu incl. divide by zero and overflow"
    RR      div, 20, 6, 3
    RR      div, -20, 6, -3                  /* rounds toward zero */
    RR      rem, -20, 6, -2                  /* sign of the dividend */
    RR      rem, 20, -6, 2
    RR      divu, -20, 6, 0x2aaaaaaaaaaaaaa7
    RR      remu, -20, 6, 2
    RR      div, 42, 0, -1                   /* x / 0 = all ones */
    RR      divu, 42, 0, 0xffffffffffffffff
    RR      rem, 42, 0, 42                   /* x % 0 = x */
    RR      remu, -42, 0, -42
    RR      div, 0x8000000000000000, -1, 0x8000000000000000   /* overflow */
    RR      rem, 0x8000000000000000, -1, 0

    TEST    11, "divw/divuw/remw/remuw incl. divide by zero and overflow"
    RR      divw, 0xffffffff00000014, 6, 3          /* upper bits ignored */
    RR      divw, -20, 6, -3
    RR      remw, -20, 6, -2
    RR      divuw, 0xfffffffe, 2, 0x7fffffff
    RR      divuw, 0xfffffffe, 1, 0xfffffffffffffffe /* result sign-extends */
    RR      remuw, 0xffffffff, 0x10, 0xf
    RR      divw, 42, 0, -1
    RR      divuw, 42, 0, -1
    RR      remw, 0x80000001, 0, 0xffffffff80000001
    RR      remuw, 0x80000001, 0, 0xffffffff80000001
    RR      divw, 0x80000000, -1, 0xffffffff80000000  /* overflow */
    RR      remw, 0x80000000, -1, 0

    TEST    12, "compressed instructions"
    .option push
    .option rvc
    li      s0, 0
    c.li    s0, 31
    c.addi  s0, -1
    c.slli  s0, 2
    c.mv    s1, s0
    c.add   s1, s0
    c.addiw s1, 1
    .option pop
    CHECK   s0, 120
    CHECK   s1, 241
    .option push
    .option rvc
    c.li    s0, -1
    c.srli  s0, 60
    c.li    s1, 3
    c.and   s0, s1
    c.j     13f
    c.li    s0, 0
13: .option pop
    CHECK   s0, 3

    j       pass
