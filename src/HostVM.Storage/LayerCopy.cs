using HostVM.Storage.Qcow2;

namespace HostVM.Storage;

/// <summary>
/// The copying half of the live block jobs, one cluster at a time, each under <c>exclusive</c> (the drive's gate, so a
/// guest request never sees a cluster half copied) and each deciding again, under the gate, whether it still needs
/// copying. Killed at any moment, what they leave reads the same as before: a stream adds to the top layer only bytes
/// its backing file already shows there, and a commit writes into a layer the top one hides wherever it writes.
/// </summary>
public static class LayerCopy
{
    /// <summary>
    /// Pulls into <paramref name="top"/> every cluster it does not define itself and its backing chain holds data for, so
    /// that afterwards its backing file can go (<see cref="Qcow2BlockDevice.DropBacking"/>). Guest writes meanwhile land in
    /// <paramref name="top"/> and are never overwritten: a cluster the top defines is left alone.
    /// </summary>
    public static void Stream(Qcow2BlockDevice top, Action<Action> exclusive, IProgress<long>? progress, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(top);
        ArgumentNullException.ThrowIfNull(exclusive);
        int cluster = top.ClusterBytes;
        var buffer = new byte[cluster];
        ForEachCluster(top, cluster, progress, cancel, offset =>
        {
            exclusive(() =>
            {
                if (top.Defines(offset))
                {
                    return;
                }

                int n = (int)Math.Min(cluster, top.Length - offset);
                top.Read(offset, buffer.AsSpan(0, n)); // through the backing chain
                // Zeroes need no copy: without a backing file an unallocated cluster reads as zeroes too.
                if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0))
                {
                    top.Write(offset, buffer.AsSpan(0, n));
                }
            });
        }, skipHoles: true);
    }

    /// <summary>
    /// Copies every cluster <paramref name="top"/> defines into <paramref name="target"/>, its backing file open for
    /// writing. The caller mirrors guest writes to the target while this runs, so that when it returns the target alone
    /// reads what the top does.
    /// </summary>
    public static void Commit(Qcow2BlockDevice top, IBlockDevice target, Action<Action> exclusive, IProgress<long>? progress, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(top);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(exclusive);
        int cluster = top.ClusterBytes;
        var buffer = new byte[cluster];
        ForEachCluster(top, cluster, progress, cancel, offset =>
        {
            exclusive(() =>
            {
                if (!top.Defines(offset))
                {
                    return;
                }

                int n = (int)Math.Min(cluster, top.Length - offset);
                top.Read(offset, buffer.AsSpan(0, n));
                if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0))
                {
                    target.Write(offset, buffer.AsSpan(0, n));
                }
                else
                {
                    target.WriteZeroes(offset, n, mayUnmap: true);
                }
            });
        }, skipHoles: false);
        exclusive(target.Flush);
    }

    private static void ForEachCluster(Qcow2BlockDevice top, int cluster, IProgress<long>? progress, CancellationToken cancel, Action<long> copy, bool skipHoles)
    {
        long length = top.Length;
        long reported = 0;
        for (long at = 0; at < length;)
        {
            cancel.ThrowIfCancellationRequested();

            // Ranges that read as holes of zeroes through the whole chain need no copy to stay that way.
            var extent = skipHoles ? top.MapAllocation(at, Math.Min(length - at, 1L << 30))[0] : new BlockExtent(at, Math.Min(length - at, 1L << 30), Hole: false, Zero: false);
            if (!(extent.Hole && extent.Zero))
            {
                for (long offset = extent.Offset & ~((long)cluster - 1); offset < extent.End; offset += cluster)
                {
                    cancel.ThrowIfCancellationRequested();
                    copy(offset);
                    if (offset - reported >= 16L << 20)
                    {
                        reported = offset;
                        progress?.Report(offset);
                    }
                }
            }

            at = extent.End;
        }

        progress?.Report(length);
    }
}
