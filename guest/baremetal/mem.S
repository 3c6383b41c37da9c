/* Loads and stores: widths, sign/zero extension, byte order, offsets,
   misaligned accesses (also across an 8-byte line and a 4 KiB page), FP loads/stores. */
#include "common.h"

/* load `op` from sym+off into t2 and compare */
.macro LOADCHK op, sym, off, expected
    la      t0, \sym
    \op     t2, \off(t0)
    CHECK   t2, \expected
.endm

    .text
main:
    PRINT   "mem: loads/stores, sign extension, misaligned accesses\n"

    TEST    1, "aligned loads sign- and zero-extend"
    LOADCHK lb,  signs, 1, 0xffffffffffffff80
    LOADCHK lbu, signs, 1, 0x80
    LOADCHK lb,  signs, 3, 0x7f
    LOADCHK lh,  signs, 0, 0xffffffffffff8001
    LOADCHK lhu, signs, 0, 0x8001
    LOADCHK lh,  signs, 2, 0x7fff
    LOADCHK lw,  signs, 0, 0x7fff8001
    LOADCHK lw,  signs, 4, 0xffffffff80000000
    LOADCHK lwu, signs, 4, 0x80000000
    LOADCHK ld,  signs, 0, 0x800000007fff8001

    TEST    2, "stores write only their bytes, little-endian"
    la      s0, scratch
    li      t0, -1
    sd      t0, 0(s0)
    sd      t0, 8(s0)
    li      t0, 0x1122334455667788
    sb      t0, 0(s0)
    sh      t0, 2(s0)
    sw      t0, 4(s0)
    sd      t0, 8(s0)
    ld      t1, 0(s0)
    CHECK   t1, 0x556677887788ff88
    ld      t1, 8(s0)
    CHECK   t1, 0x1122334455667788
    lbu     t1, 15(s0)
    CHECK   t1, 0x11
    lbu     t1, 8(s0)
    CHECK   t1, 0x88

    TEST    3, "negative offsets, rd == rs1, loads into x0"
    la      t0, signs + 8
    ld      t1, -8(t0)
    CHECK   t1, 0x800000007fff8001
    lbu     t1, -7(t0)
    CHECK   t1, 0x80
    la      t0, signs
    ld      t0, 0(t0)
    CHECK   t0, 0x800000007fff8001
    la      t0, signs
    ld      x0, 0(t0)
    CHECK   x0, 0
    la      t0, scratch + 2048
    li      t1, 0x5a
    sb      t1, -2048(t0)
    la      t0, scratch
    lbu     t1, 0(t0)
    CHECK   t1, 0x5a

    TEST    4, "misaligned loads"
    LOADCHK lh,  ramp, 1, 0x2211
    LOADCHK lh,  ramp, 7, 0xffffffffffff8877
    LOADCHK lhu, ramp, 7, 0x8877
    LOADCHK lw,  ramp, 3, 0x66554433
    LOADCHK lw,  ramp, 9, 0xffffffffccbbaa99
    LOADCHK lwu, ramp, 9, 0xccbbaa99
    LOADCHK lw,  ramp, 6, 0xffffffff99887766
    LOADCHK ld,  ramp, 5, 0xccbbaa9988776655
    LOADCHK ld,  ramp, 1, 0x8877665544332211
    LOADCHK ld,  ramp, 7, 0xeeddccbbaa998877

    TEST    5, "misaligned stores"
    la      s0, scratch
    sd      zero, 0(s0)
    sd      zero, 8(s0)
    sd      zero, 16(s0)
    li      t0, 0x0807060504030201
    sd      t0, 3(s0)
    li      t0, 0xaabb
    sh      t0, 13(s0)
    li      t0, 0x11223344
    sw      t0, 15(s0)
    ld      t1, 0(s0)
    CHECK   t1, 0x0504030201000000
    ld      t1, 8(s0)
    CHECK   t1, 0x44aabb0000080706
    ld      t1, 16(s0)
    CHECK   t1, 0x0000000000112233

    TEST    6, "misaligned accesses across a 4 KiB page boundary"
    la      s0, pages + 4096
    li      t0, 0x0102030405060708
    sd      t0, -3(s0)
    lbu     t1, -3(s0)
    CHECK   t1, 0x08
    lbu     t1, 4(s0)
    CHECK   t1, 0x01
    ld      t1, -3(s0)
    CHECK   t1, 0x0102030405060708
    lw      t1, -1(s0)
    CHECK   t1, 0x03040506
    lh      t1, -1(s0)
    CHECK   t1, 0x0506
    ld      t1, -8(s0)
    CHECK   t1, 0x0607080000000000
    li      t0, 0xa1b2c3d4
    sw      t0, -2(s0)
    lhu     t1, -2(s0)
    CHECK   t1, 0xc3d4
    lhu     t1, 0(s0)
    CHECK   t1, 0xa1b2
    lwu     t1, -2(s0)
    CHECK   t1, 0xa1b2c3d4

    TEST    7, "FP loads/stores, aligned and misaligned"
    li      t0, MSTATUS_FS
    csrs    mstatus, t0
    la      s0, ramp
    fld     ft0, 0(s0)
    fmv.x.d t1, ft0
    CHECK   t1, 0x7766554433221100
    fld     ft1, 3(s0)
    fmv.x.d t1, ft1
    CHECK   t1, 0xaa99887766554433
    flw     ft2, 5(s0)
    fmv.x.d t1, ft2                     /* flw NaN-boxes */
    CHECK   t1, 0xffffffff88776655
    la      s1, scratch
    fsd     ft1, 1(s1)
    ld      t1, 1(s1)
    CHECK   t1, 0xaa99887766554433
    fsw     ft2, 11(s1)
    lwu     t1, 11(s1)
    CHECK   t1, 0x88776655

    TEST    8, "store then load of every byte of a doubleword"
    la      s0, scratch
    li      t0, 0xf0e1d2c3b4a59687
    sd      t0, 0(s0)
    li      s1, 0
    li      s2, 0
1:  add     t1, s0, s1
    lbu     t2, 0(t1)
    slli    t1, s1, 3
    sll     t2, t2, t1
    or      s2, s2, t2
    addi    s1, s1, 1
    li      t1, 8
    blt     s1, t1, 1b
    CHECKR  s2, t0

    j       pass

    .data
    .balign 8
signs:  .byte 0x01, 0x80, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x80
ramp:   .byte 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77
        .byte 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff
    .balign 8
scratch: .skip 4096

    .bss
    .balign 4096
pages:  .skip 8192
