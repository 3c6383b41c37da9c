using HostVM.Cli.Api;

namespace HostVM.Cli.Tests.Api;

public sealed class ProgressStreamTests
{
    [Fact]
    public async Task ReportsTheBytesReadSoFar()
    {
        var seen = new List<long>();
        using var stream = new ProgressStream(new MemoryStream(new byte[10_000]), seen.Add);
        Assert.Equal(10_000, stream.Length);
        var buffer = new byte[4096];
        while (await stream.ReadAsync(buffer) > 0)
        {
        }

        Assert.Equal([4096, 8192, 10_000], seen);
        stream.Seek(0, SeekOrigin.Begin);
        Assert.Equal(0, seen[^1]); // a rewound upload counts again
        Assert.Equal(100, stream.Read(buffer, 0, 100));
        Assert.Equal(100, seen[^1]);
    }
}
