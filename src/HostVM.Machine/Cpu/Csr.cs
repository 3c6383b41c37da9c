namespace HostVM.Machine.Cpu;

/// <summary>CSR numbers and the bit fields HostVM implements.</summary>
public static class Csr
{
    public const int Fflags = 0x001, Frm = 0x002, Fcsr = 0x003;
    public const int Cycle = 0xC00, Time = 0xC01, Instret = 0xC02, HpmCounter3 = 0xC03, HpmCounter31 = 0xC1F;

    public const int Sstatus = 0x100, Sie = 0x104, Stvec = 0x105, Scounteren = 0x106, Senvcfg = 0x10A;
    public const int Sscratch = 0x140, Sepc = 0x141, Scause = 0x142, Stval = 0x143, Sip = 0x144, Satp = 0x180;

    public const int Mvendorid = 0xF11, Marchid = 0xF12, Mimpid = 0xF13, Mhartid = 0xF14, Mconfigptr = 0xF15;
    public const int Mstatus = 0x300, Misa = 0x301, Medeleg = 0x302, Mideleg = 0x303, Mie = 0x304, Mtvec = 0x305;
    public const int Mcounteren = 0x306, Menvcfg = 0x30A, Mcountinhibit = 0x320, MhpmEvent3 = 0x323, MhpmEvent31 = 0x33F;
    public const int Mscratch = 0x340, Mepc = 0x341, Mcause = 0x342, Mtval = 0x343, Mip = 0x344;
    public const int PmpCfg0 = 0x3A0, PmpCfg15 = 0x3AF, PmpAddr0 = 0x3B0, PmpAddr63 = 0x3EF;
    /// <summary>Debug triggers: none are implemented; tselect/tdata read as "no trigger" (type 0).</summary>
    public const int Tselect = 0x7A0, Tdata1 = 0x7A1, Tdata2 = 0x7A2, Tdata3 = 0x7A3, Tinfo = 0x7A4;
    public const int Mcycle = 0xB00, Minstret = 0xB02, MhpmCounter3 = 0xB03, MhpmCounter31 = 0xB1F;

    // mstatus / sstatus fields
    public const ulong StatusSie = 1UL << 1, StatusMie = 1UL << 3, StatusSpie = 1UL << 5, StatusMpie = 1UL << 7;
    public const ulong StatusSpp = 1UL << 8;
    public const int StatusMppShift = 11;
    public const ulong StatusMpp = 3UL << StatusMppShift;
    public const ulong StatusFs = 3UL << 13, StatusFsDirty = 3UL << 13;
    public const ulong StatusMprv = 1UL << 17, StatusSum = 1UL << 18, StatusMxr = 1UL << 19;
    public const ulong StatusTvm = 1UL << 20, StatusTw = 1UL << 21, StatusTsr = 1UL << 22;
    public const ulong StatusUxl = 2UL << 32, StatusSxl = 2UL << 34;
    public const ulong StatusSd = 1UL << 63;

    public const ulong MstatusWritable = StatusSie | StatusMie | StatusSpie | StatusMpie | StatusSpp | StatusMpp | StatusFs
        | StatusMprv | StatusSum | StatusMxr | StatusTvm | StatusTw | StatusTsr;
    public const ulong SstatusMask = StatusSie | StatusSpie | StatusSpp | StatusFs | StatusSum | StatusMxr | (3UL << 32) | StatusSd;

    // interrupt bits (mip / mie)
    public const ulong Ssi = 1UL << 1, Msi = 1UL << 3, Sti = 1UL << 5, Mti = 1UL << 7, Sei = 1UL << 9, Mei = 1UL << 11;
    public const ulong SupervisorInterrupts = Ssi | Sti | Sei;
    public const ulong AllInterrupts = Ssi | Msi | Sti | Mti | Sei | Mei;
    public const ulong MipWritable = Ssi | Sti | Sei;

    /// <summary>Exceptions that medeleg can delegate: all but ECALL from M and the reserved codes.</summary>
    public const ulong MedelegWritable = 0xB3FF;

    /// <summary>RV64 with A, C, D, F, I, M, S, U.</summary>
    public const ulong MisaValue = (2UL << 62) | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);

    public const ulong InterruptBit = 1UL << 63;
}
