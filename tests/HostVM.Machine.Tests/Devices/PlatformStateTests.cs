using HostVM.Machine.Devices;
using HostVM.Machine.Memory;
using HostVM.Machine.State;

namespace HostVM.Machine.Tests.Devices;

/// <summary>
/// The platform devices' state round-trips: random register traffic (and host events: interrupt lines,
/// received bytes) drives a device, it is saved and restored into a fresh one, and from then on the same
/// traffic gets the same reads, the same interrupt lines and the same output from both.
/// </summary>
public sealed class PlatformStateTests
{
    /// <summary>One step of traffic: a register write, a register read (its value recorded) or a host event.</summary>
    private delegate void Step<in TDevice>(TDevice device, List<string> log);

    /// <summary>
    /// Runs <paramref name="steps"/> random steps on A, saves it into B, then the same steps on both,
    /// comparing what each logged (reads, lines, output) after every step.
    /// </summary>
    private static void RoundTrip<TDevice, TState>(
        int seed, TDevice a, TDevice b, Func<Random, Step<TDevice>> next, Action<TDevice, List<string>> observe, Action? restored = null, int steps = 400)
        where TDevice : IPersistent<TState>
        where TState : notnull
    {
        var random = new Random(seed);
        var ignored = new List<string>();
        for (int i = 0; i < steps; i++)
        {
            next(random)(a, ignored);
        }

        b.RestoreState(a.SaveState());
        restored?.Invoke();
        for (int i = 0; i < steps; i++)
        {
            var step = next(random);
            List<string> logA = [], logB = [];
            step(a, logA);
            step(b, logB);
            observe(a, logA);
            observe(b, logB);
            Assert.True(logA.SequenceEqual(logB), $"step {i} (seed {seed}): A [{string.Join(", ", logA)}] vs B [{string.Join(", ", logB)}]");
        }
    }

    private static Step<IMmioDevice> Access(ulong offset, int size, ulong value, bool read) => (device, log) =>
    {
        if (read)
        {
            log.Add($"0x{offset:x} = 0x{device.Read(offset, size):x}");
        }
        else
        {
            device.Write(offset, size, value);
        }
    };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Clint_round_trips(int seed)
    {
        FakeHart[] hartsA = FakeHart.Create(3), hartsB = FakeHart.Create(3);
        var clock = new MachineClock();
        var a = new Clint(hartsA, clock);
        var b = new Clint(hartsB, clock);
        var lines = new Dictionary<Clint, FakeHart[]> { [a] = hartsA, [b] = hartsB };
        RoundTrip<Clint, ClintState>(seed, a, b, r =>
        {
            int hart = r.Next(3);
            var access = r.Next(2) == 0
                ? Access(Clint.MsipOffset + (Clint.MsipStride * (ulong)hart), 4, (ulong)r.Next(2), r.Next(3) == 0)
                : Access(Clint.MtimecmpOffset + (Clint.MtimecmpStride * (ulong)hart), 8, (ulong)r.NextInt64(), r.Next(3) == 0);
            return (clint, log) => access(clint, log);
        }, (clint, log) => log.AddRange(lines[clint].Select(h => $"msip {h[InterruptLine.MachineSoftware]} mtimecmp {h.TimerCompare:x}")),
        restored: () =>
        {
            // mtimecmp is the hart's (saved in its HartSnapshot), not the CLINT's.
            for (int i = 0; i < hartsA.Length; i++)
            {
                hartsB[i].TimerCompare = hartsA[i].TimerCompare;
            }
        });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Plic_round_trips(int seed)
    {
        FakeHart[] hartsA = FakeHart.Create(2), hartsB = FakeHart.Create(2);
        var a = new Plic(hartsA, 32);
        var b = new Plic(hartsB, 32);
        var lines = new Dictionary<Plic, FakeHart[]> { [a] = hartsA, [b] = hartsB };
        RoundTrip<Plic, PlicState>(seed, a, b, r =>
        {
            int source = r.Next(1, 32), context = r.Next(4);
            bool read = r.Next(3) == 0;
            Step<IMmioDevice> access = r.Next(6) switch
            {
                0 => Access(Plic.PriorityOffset + (4 * (ulong)source), 4, (ulong)r.Next(8), read),
                1 => Access(Plic.PendingOffset, 4, 0, true),
                2 => Access(Plic.EnableOffset + (Plic.EnableStride * (ulong)context), 4, (ulong)r.NextInt64(), read),
                3 => Access(Plic.ContextOffset + (Plic.ContextStride * (ulong)context) + Plic.ThresholdRegister, 4, (ulong)r.Next(8), read),
                4 => Access(Plic.ContextOffset + (Plic.ContextStride * (ulong)context) + Plic.ClaimCompleteRegister, 4, (ulong)source, read),
                _ => (device, _) => { },
            };
            bool level = r.Next(2) == 0; // drawn now, so A and B get the same
            return r.Next(3) == 0 ? (plic, _) => plic.SetIrq(source, level) : (plic, log) => access(plic, log);
        }, (plic, log) => log.AddRange(lines[plic].Select(h => $"mei {h[InterruptLine.MachineExternal]} sei {h[InterruptLine.SupervisorExternal]}")));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Uart_round_trips(int seed)
    {
        FakeInterruptController irqsA = new(), irqsB = new();
        List<byte> sentA = [], sentB = [];
        var a = new Uart16550(irqsA, 10, sentA.Add);
        var b = new Uart16550(irqsB, 10, sentB.Add);
        var observed = new Dictionary<Uart16550, (FakeInterruptController Irqs, List<byte> Sent)> { [a] = (irqsA, sentA), [b] = (irqsB, sentB) };
        int sentBefore = -1;
        RoundTrip<Uart16550, UartState>(seed, a, b, r =>
        {
            if (r.Next(6) == 0)
            {
                var bytes = new byte[r.Next(1, 20)];
                r.NextBytes(bytes);
                return (uart, _) => uart.Receive(bytes);
            }

            var access = Access((ulong)r.Next(8), 1, (ulong)r.Next(256), r.Next(2) == 0);
            return (uart, log) => access(uart, log);
        }, (uart, log) =>
        {
            var (irqs, sent) = observed[uart];
            sentBefore = sentBefore < 0 ? sentA.Count : sentBefore;
            log.Add($"irq {irqs[10]}, sent {Convert.ToHexString([.. (uart == a ? sent.Skip(sentBefore) : sent)])}");
        });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Rtc_round_trips(int seed)
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
        FakeInterruptController irqsA = new(), irqsB = new();
        using var a = new GoldfishRtc(irqsA, 11, () => now);
        using var b = new GoldfishRtc(irqsB, 11, () => now);
        var irqs = new Dictionary<GoldfishRtc, FakeInterruptController> { [a] = irqsA, [b] = irqsB };
        ulong[] offsets = [GoldfishRtc.TimeLow, GoldfishRtc.TimeHigh, GoldfishRtc.AlarmLow, GoldfishRtc.AlarmHigh, GoldfishRtc.IrqEnabled, GoldfishRtc.ClearAlarm, GoldfishRtc.AlarmStatus, GoldfishRtc.ClearInterrupt];
        RoundTrip<GoldfishRtc, GoldfishRtcState>(seed, a, b, r =>
        {
            ulong offset = offsets[r.Next(offsets.Length)];
            ulong value = offset is GoldfishRtc.TimeHigh or GoldfishRtc.AlarmHigh ? (ulong)r.Next(0x1800_0000) : (ulong)(uint)r.Next();
            var access = Access(offset, 4, value, r.Next(2) == 0);
            return (rtc, log) => access(rtc, log);
        }, (rtc, log) => log.Add($"irq {irqs[rtc][11]}"));
    }
}
