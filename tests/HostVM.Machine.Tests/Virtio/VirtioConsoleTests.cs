using System.Collections.Concurrent;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

public sealed class VirtioConsoleTests : IDisposable
{
    private readonly ConcurrentQueue<byte[]> _output = new();
    private readonly VirtioConsole _console;
    private readonly VirtioRig _rig;

    public VirtioConsoleTests()
    {
        _console = new VirtioConsole(m => _output.Enqueue(m.ToArray()));
        _rig = new VirtioRig(_console);
    }

    public void Dispose() => _rig.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Output_reaches_the_host_in_order(bool indirect)
    {
        var d = _rig.Driver;
        d.Initialize();
        var a = d.Buffer(6);
        var b = d.Buffer(7);
        d.Fill(a, "hello "u8);
        d.Fill(b, "world!\n"u8);
        Assert.Equal(0u, d.Submit(1, [a, b], [], indirect).Written);
        Assert.Equal("hello world!\n"u8.ToArray(), _output.SelectMany(x => x).ToArray());
    }

    [Fact]
    public void Input_waits_for_a_buffer_and_is_split_across_small_ones()
    {
        var d = _rig.Driver;
        d.Initialize();
        Assert.Equal(10, _console.SendInput("0123456789"u8));
        var first = d.Buffer(4);
        Assert.Equal(4u, d.Submit(0, [], [first]).Written);
        Assert.Equal("0123"u8.ToArray(), d.Contents(first));
        var second = d.Buffer(64);
        Assert.Equal(6u, d.Submit(0, [], [second]).Written);
        Assert.Equal("456789"u8.ToArray(), d.Contents(second)[..6]);
    }

    [Fact]
    public void Input_fills_a_buffer_offered_before_it_arrived()
    {
        var d = _rig.Driver;
        d.Initialize();
        var buf = d.Buffer(16);
        d.Queue(0).Add([], [buf]);
        d.Kick(0);
        Thread.Sleep(10);
        Assert.Equal(0, d.Queue(0).PendingUsed);
        _console.SendInput("ls\n"u8);
        Assert.Equal(3u, d.WaitUsed(0).Written);
        Assert.Equal("ls\n"u8.ToArray(), d.Contents(buf)[..3]);
    }

    [Fact]
    public void Input_beyond_the_backlog_is_refused()
    {
        Assert.Equal(VirtioConsole.InputBacklog, _console.SendInput(new byte[VirtioConsole.InputBacklog + 100]));
        Assert.Equal(0, _console.SendInput(new byte[1]));
    }

    [Fact]
    public void Output_requests_streamed_with_EVENT_IDX_are_never_missed()
    {
        var d = _rig.Driver;
        d.Initialize();
        Assert.NotEqual(0UL, d.Features & VirtioFeatures.RingEventIdx);
        var buf = d.Buffer(1);
        d.Fill(buf, "x"u8);
        d.Stream(1, 3000, [buf], []);
        Assert.Equal(3000, _output.Sum(x => x.Length));
    }
}
