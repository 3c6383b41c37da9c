using HostVM.Machine.Memory;

namespace HostVM.Machine.Tests.Memory;

/// <summary>The dirty-page log's sets as arrays of page numbers, for asserting on.</summary>
internal static class DirtyPages
{
    /// <summary>Takes the log's marks into <paramref name="set"/>; its page numbers in order.</summary>
    public static int[] Take(DirtyPageLog log, DirtyPageSet set)
    {
        log.TakeInto(set);
        return List(set);
    }

    public static int[] List(DirtyPageSet set)
    {
        var pages = new List<int>();
        foreach (int p in set)
        {
            pages.Add(p);
        }

        Assert.Equal(pages.Count, set.Count);
        return [.. pages];
    }
}
