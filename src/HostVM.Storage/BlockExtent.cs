namespace HostVM.Storage;

/// <summary>
/// A run of a disk with one allocation state, as NBD's <c>base:allocation</c> context describes it: a
/// <paramref name="Hole"/> has no storage behind it (a write there may need new space); <paramref name="Zero"/>
/// reads as zeroes. Neither set means allocated data, or a state the device could not tell.
/// </summary>
public readonly record struct BlockExtent(long Offset, long Length, bool Hole, bool Zero)
{
    public long End => Offset + Length;
}
