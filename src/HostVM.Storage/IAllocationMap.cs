namespace HostVM.Storage;

/// <summary>
/// A block device that can say which parts of it hold data: holes and zeroes need not be copied by a backup,
/// a migration or an NBD client (qemu-img convert skips them).
/// </summary>
public interface IAllocationMap
{
    /// <summary>
    /// Extents in order from <paramref name="offset"/>, each of nonzero length, none past the device's end; they
    /// cover at least the first byte and may stop short of <paramref name="length"/> (the caller asks again from
    /// where they end) but never go beyond it.
    /// </summary>
    IReadOnlyList<BlockExtent> MapAllocation(long offset, long length);
}
