using System.Text.Json;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// Two rigs of the same device for state round-trip tests: <see cref="A"/> is driven alone, saved and
/// restored into <see cref="B"/> (with a copy of A's RAM, as a snapshot carries RAM apart); from then on
/// the same traffic goes to both, and <see cref="AssertSame"/> says whether they still behave alike:
/// the same RAM (used rings, buffers written), the same registers for every queue, the same
/// configuration space, the same interrupt line and the same saved state.
/// </summary>
internal sealed class StateTwin : IDisposable
{
    private static readonly JsonSerializerOptions Json = new() { IncludeFields = true };

    public StateTwin(Func<VirtioDevice> create, bool legacy = false)
    {
        A = new VirtioRig(create(), legacy);
        B = new VirtioRig(create(), legacy);
    }

    public VirtioRig A { get; }

    public VirtioRig B { get; }

    /// <summary>Guest ranges whose contents may differ (random bytes a device made up): blanked before comparing.</summary>
    public List<GuestBuffer> Unpredictable { get; } = [];

    /// <summary>Saves A, copies its RAM into B, restores B and kicks both; returns the state (as JSON, for messages).</summary>
    public string SaveIntoB(Action? copyBackends = null)
    {
        var state = A.Transport.SaveState();
        CopyRam();
        copyBackends?.Invoke();
        B.Transport.RestoreState(state);

        // A restored device looks at its queues when it starts again, so it serves (or fails on) what
        // the driver made available without a kick; a kick to each queue of both puts A in step.
        for (uint q = 0; q < A.Device.QueueCount; q++)
        {
            Write(MmioTransport.RegQueueNotify, q);
        }

        return Describe(state);
    }

    /// <summary>What the driver prepared in A's RAM (requests, buffers), given to B too. Call after <see cref="Settle"/>.</summary>
    public void CopyRam() => A.Ram.GetSpan(A.Ram.BaseAddress, (int)A.Ram.Size).CopyTo(B.Ram.GetSpan(B.Ram.BaseAddress, (int)B.Ram.Size));

    /// <summary>The same 32-bit register write to both.</summary>
    public void Write(ulong offset, uint value)
    {
        A.Transport.Write(offset, 4, value);
        B.Transport.Write(offset, 4, value);
    }

    /// <summary>Both devices get the same call (a host-side action: a frame, a button press, a new target).</summary>
    public void Both(Action<VirtioDevice> action)
    {
        action(A.Device);
        action(B.Device);
    }

    /// <summary>
    /// Waits until both devices are done (their workers run asynchronously): each device's thread is
    /// idle and its RAM unchanged over a few polls, or 2 s passed (then the comparison shows the difference).
    /// </summary>
    public void Settle()
    {
        byte[]? lastA = null, lastB = null;
        int stable = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (stable < 3 && clock.Elapsed < TimeSpan.FromSeconds(2))
        {
            Thread.Sleep(3);
            byte[] a = Snapshot(A), b = Snapshot(B);
            bool idle = A.Device.Idle && B.Device.Idle;
            stable = idle && lastA is not null && a.AsSpan().SequenceEqual(lastA) && b.AsSpan().SequenceEqual(lastB) ? stable + 1 : 0;
            (lastA, lastB) = (a, b);
        }

    }

    private static byte[] Snapshot(VirtioRig rig) => rig.Ram.GetSpan(rig.Ram.BaseAddress, (int)rig.Ram.Size).ToArray();

    /// <summary>Settles, then asserts both behave alike so far; <paramref name="step"/> names the point in the traffic.</summary>
    /// <summary>More to compare after the rigs (what the backends got: disk contents, frames sent).</summary>
    public Action<string>? AssertBackendsSame { get; set; }

    public void AssertSame(string step)
    {
        Settle();
        AssertBackendsSame?.Invoke(step);
        foreach (var u in Unpredictable)
        {
            A.Ram.GetSpan(u.Address, (int)u.Length).Clear();
            B.Ram.GetSpan(u.Address, (int)u.Length).Clear();
        }

        var ramA = A.Ram.GetSpan(A.Ram.BaseAddress, (int)A.Ram.Size);
        var ramB = B.Ram.GetSpan(B.Ram.BaseAddress, (int)B.Ram.Size);
        int diff = ramA.CommonPrefixLength(ramB);
        Assert.True(diff == ramA.Length, $"{step}: guest RAM differs first at 0x{A.Ram.BaseAddress + (ulong)diff:x}");

        Assert.Equal(Registers(A), Registers(B));
        Assert.True(A.IrqLine == B.IrqLine, $"{step}: interrupt line {A.IrqLine} vs {B.IrqLine}");
        Assert.Equal(Describe(A.Transport.SaveState()), Describe(B.Transport.SaveState()));
    }

    /// <summary>Every register as the driver reads it, for every queue (QueueSel is put back after).</summary>
    private static List<string> Registers(VirtioRig rig)
    {
        var t = rig.Transport;
        var lines = new List<string>();
        uint selected = t.SaveState().QueueSelect; // QueueSel is write-only
        for (uint q = 0; q <= (uint)t.Device.QueueCount; q++)
        {
            t.Write(MmioTransport.RegQueueSel, 4, q);
            for (ulong r = 0; r < MmioTransport.ConfigOffset; r += 4)
            {
                lines.Add($"queue {q} reg 0x{r:x3} = 0x{t.Read(r, 4):x}");
            }
        }

        t.Write(MmioTransport.RegQueueSel, 4, selected);
        for (int c = 0; c < t.Device.ConfigSize; c++)
        {
            lines.Add($"config {c} = 0x{t.Read(MmioTransport.ConfigOffset + (ulong)c, 1):x2}");
        }

        return lines;
    }

    /// <summary>
    /// A state as text, without the rate limiters' token levels and refill times and the time balloon
    /// statistics arrived: they follow the wall clock, which differs between the two (the limiter tests
    /// compare them).
    /// </summary>
    public static string Describe(MmioTransportState state)
    {
        string json = JsonSerializer.Serialize(state, Json);
        return System.Text.RegularExpressions.Regex.Replace(json, "\"(SinceRefill|Tokens|ReceivedAt)\":(\"[^\"]*\"|[-0-9.eE+]+)", "\"$1\":\"-\"");
    }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
