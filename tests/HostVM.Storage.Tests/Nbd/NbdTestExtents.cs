using HostVM.Storage;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>The allocation of a whole range, asked for again from where each answer ended, checked to be consecutive.</summary>
internal static class NbdTestExtents
{
    public static List<BlockExtent> All(IAllocationMap map, long offset, long length)
    {
        var all = new List<BlockExtent>();
        long at = offset, end = offset + length;
        while (at < end)
        {
            var part = map.MapAllocation(at, end - at);
            Assert.NotEmpty(part);
            foreach (var e in part)
            {
                Assert.Equal(at, e.Offset);
                Assert.True(e.Length > 0 && e.End <= end, $"{e} is empty or past {end}");
                at = e.End;
            }

            all.AddRange(part);
        }

        return all;
    }
}
