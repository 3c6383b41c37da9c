namespace HostVM.Machine.Cpu;

/// <summary>
/// A hart's shortcut from a guest-virtual pc to its decoded block, skipping the fetch TLB and the
/// code cache. Valid while the hart's fetch context (TLB generation + privilege) is unchanged and
/// the block has not been invalidated.
/// </summary>
internal struct JumpCacheEntry
{
    public ulong Pc;
    public ulong Context;
    public DecodedBlock? Block;
}
