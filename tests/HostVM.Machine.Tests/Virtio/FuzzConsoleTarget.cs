using System.Collections.Concurrent;
using System.Text;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>virtio-console: output buffers of every size (empty, over 64 KiB), input buffers, input from the host.</summary>
internal sealed class FuzzConsoleTarget : FuzzTarget
{
    private readonly ConcurrentQueue<string> _markers = new();
    private readonly VirtioConsole _console;
    private long _outputBytes;

    public FuzzConsoleTarget() => _console = new VirtioConsole(Output);

    public override VirtioDevice Device => _console;

    private void Output(ReadOnlyMemory<byte> bytes)
    {
        Interlocked.Add(ref _outputBytes, bytes.Length);
        if (bytes.Span.StartsWith("live "u8))
        {
            _markers.Enqueue(Encoding.ASCII.GetString(bytes.Span));
        }
    }

    public override FuzzRequest MalformedRequest(FuzzGuest guest)
    {
        var r = guest.Random;
        bool transmit = r.Next(3) != 0;
        var segments = new List<DescriptorSegment>();
        int n = r.Next(1, 4);
        for (int i = 0; i < n; i++)
        {
            uint length = r.Next(4) switch
            {
                0 => 0,
                1 => (uint)r.Next(60 * 1024, 70 * 1024),
                _ => (uint)r.Next(1, 300),
            };
            bool writable = transmit ? r.Next(6) == 0 : r.Next(6) != 0;
            segments.Add(r.Next(8) == 0 ? guest.RandomSegment() : guest.RandomBytes(length, writable));
        }

        return new FuzzRequest(transmit ? 1 : 0, segments);
    }

    public override void HostEvent(FuzzGuest guest)
    {
        var input = new byte[guest.Random.Next(0, 200)];
        guest.Random.NextBytes(input);
        _console.SendInput(input);
    }

    public override void CheckLive(FuzzGuest guest, int batch)
    {
        var d = guest.Driver;
        string marker = $"live {batch}";
        var text = d.Buffer((uint)marker.Length);
        d.Fill(text, Encoding.ASCII.GetBytes(marker));
        _markers.Clear();
        d.Submit(1, [text], [], indirect: batch % 2 == 1);
        Assert.Contains(marker, _markers);
    }

    public override void CheckExercised(FuzzGuest guest) =>
        Assert.True(Interlocked.Read(ref _outputBytes) > 0, $"seed 0x{guest.Seed:x}: no random output ever reached the host");
}
