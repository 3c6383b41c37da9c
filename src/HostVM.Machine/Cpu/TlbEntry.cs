using System.Runtime.InteropServices;

namespace HostVM.Machine.Cpu;

/// <summary>
/// One software-TLB entry: guest-virtual page → host pointer. A hit is <c>Tag == page of the
/// access's last byte</c>; the host address is <c>va + Addend</c>. Only plain RAM pages get entries.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct TlbEntry
{
    /// <summary>Never equal to a page-aligned address.</summary>
    public const ulong InvalidTag = 1;

    public ulong Tag;
    public ulong Addend;
}
