using System.Runtime.InteropServices;

namespace HostVM.Machine.Cpu;

/// <summary>
/// Everything architectural about one hart, in one unmanaged struct at a stable address, so the
/// interpreter (and later generated code) reaches any field by a fixed offset from one pointer.
/// A snapshot saves and restores this struct as it is.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct HartState
{
    /// <summary>Index of the register that writes to x0 land in; it is never read.</summary>
    public const byte ZeroSink = 32;

    public fixed ulong X[33];
    public fixed ulong F[32];
    public ulong Pc;
    public PrivilegeMode Priv;

    public ulong Mstatus;
    public ulong Medeleg;
    public ulong Mideleg;
    public ulong Mie;
    /// <summary>
    /// Pending bits as software and the CLINT/timer set them. The PLIC's supervisor-external line is
    /// kept apart in <see cref="SeipLine"/>: mip.SEIP reads as the OR of the two.
    /// </summary>
    public ulong Mip;
    /// <summary>The PLIC's S-mode external interrupt line (Csr.Sei or 0).</summary>
    public ulong SeipLine;
    public ulong Mtvec;
    public ulong Mscratch;
    public ulong Mepc;
    public ulong Mcause;
    public ulong Mtval;
    public ulong Mcounteren;
    public ulong Menvcfg;

    public ulong Stvec;
    public ulong Sscratch;
    public ulong Sepc;
    public ulong Scause;
    public ulong Stval;
    public ulong Scounteren;
    public ulong Senvcfg;
    public ulong Satp;

    /// <summary>fflags in bits 4:0, frm in bits 7:5.</summary>
    public ulong Fcsr;

    /// <summary>Retired instructions; mcycle follows it (one instruction per cycle).</summary>
    public ulong Instret;
    /// <summary>What software wrote to mcycle relative to <see cref="Instret"/>.</summary>
    public ulong CycleOffset;

    public fixed byte PmpCfg[16];
    public fixed ulong PmpAddr[16];

    /// <summary>The CLINT's mtimecmp for this hart.</summary>
    public ulong MTimeCmp;
    /// <summary>The supervisor timer deadline the built-in SBI keeps (sbi_set_timer).</summary>
    public ulong STimeCmp;

    /// <summary>LR/SC reservation: the guest-virtual address LR used, or ulong.MaxValue for none; SC also checks the value.</summary>
    public ulong ReservationAddress;
    public ulong ReservationValue;
}
