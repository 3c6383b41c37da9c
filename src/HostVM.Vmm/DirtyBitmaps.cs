using System.Numerics;
using HostVM.Storage;
using HostVM.Storage.Qcow2;
using HostVM.Vmm.Api;

namespace HostVM.Vmm;

/// <summary>
/// The bitmap requests of the API applied to a qcow2 disk: by the VMM to the drive it runs, and by the daemon to the file
/// of a VM that is stopped, the same way. Anything wrong with a request is a <see cref="VmmFault"/> (a 400).
/// </summary>
public static class DirtyBitmaps
{
    public const long DefaultGranularityBytes = 64 * 1024;

    /// <summary>The drive's backend as qcow2, or a fault naming why bitmaps cannot be kept on it.</summary>
    public static Qcow2BlockDevice Qcow2(IBlockDevice device, string driveId)
    {
        ArgumentNullException.ThrowIfNull(device);
        return device as Qcow2BlockDevice ?? throw new VmmFault($"drive {driveId}: dirty bitmaps are kept in qcow2 images; this drive is not one.");
    }

    public static IReadOnlyList<DirtyBitmap> List(Qcow2BlockDevice disk)
    {
        ArgumentNullException.ThrowIfNull(disk);
        return [.. disk.Bitmaps.Select(b => new DirtyBitmap(b.Name, b.Granularity, b.Enabled, b.Stale))];
    }

    public static void Apply(Qcow2BlockDevice disk, BitmapRequest request)
    {
        ArgumentNullException.ThrowIfNull(disk);
        ArgumentNullException.ThrowIfNull(request);
        string name = string.IsNullOrEmpty(request.Name) ? throw new VmmFault("name is required.") : request.Name;
        try
        {
            switch (request.Action)
            {
                case "add":
                    long granularity = request.GranularityBytes ?? DefaultGranularityBytes;
                    if (granularity <= 0 || !BitOperations.IsPow2(granularity))
                    {
                        throw new VmmFault($"granularity_bytes {granularity}: a power of two from 512 to 2147483648.");
                    }

                    disk.AddBitmap(name, BitOperations.Log2((ulong)granularity));
                    break;
                case "remove":
                    disk.RemoveBitmap(name);
                    break;
                case "clear":
                    disk.ClearBitmap(name);
                    break;
                case "enable" or "disable":
                    disk.SetBitmapEnabled(name, request.Action == "enable");
                    break;
                case "merge":
                    disk.MergeBitmap(string.IsNullOrEmpty(request.Source) ? throw new VmmFault("source is required to merge.") : request.Source, name);
                    break;
                default:
                    throw new VmmFault($"action '{request.Action}': must be add, remove, clear, enable, disable or merge.");
            }
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or BlockDeviceException)
        {
            throw new VmmFault(Plain(e));
        }
    }

    public static IReadOnlyList<BitmapExtent> Extents(Qcow2BlockDevice disk, string name)
    {
        ArgumentNullException.ThrowIfNull(disk);
        try
        {
            return [.. disk.BitmapExtents(name).Select(e => new BitmapExtent(e.Offset, e.Length))];
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new VmmFault(Plain(e));
        }
    }

    /// <summary>The message without the "(Parameter 'x')" an ArgumentException appends: the caller named no parameter.</summary>
    private static string Plain(Exception e) =>
        e is ArgumentException { ParamName: { } parameter } ? e.Message.Replace($" (Parameter '{parameter}')", string.Empty, StringComparison.Ordinal) : e.Message;
}
