using HostVM.Machine.Pacing;

namespace HostVM.Machine.Tests.Pacing;

/// <summary>The CPU cap's arithmetic, driven by simulated clocks: no timing, no threads.</summary>
public sealed class CpuPacerTests
{
    private static TimeSpan Ms(double milliseconds) => TimeSpan.FromMilliseconds(milliseconds);

    /// <summary>
    /// A hart that uses the whole core whenever it runs (or none: <paramref name="busy"/> false), whose
    /// slices end <paramref name="overrun"/> late and whose sleeps wake <paramref name="oversleep"/> late.
    /// Returns the CPU it used as a fraction of the wall time, over <paramref name="seconds"/>.
    /// </summary>
    private static double Simulate(CpuPacer pacer, int? cap, double seconds, bool busy = true, TimeSpan overrun = default,
        TimeSpan oversleep = default, TimeSpan start = default, TimeSpan startCpu = default)
    {
        TimeSpan wall = start, cpu = startCpu;
        while (wall - start < TimeSpan.FromSeconds(seconds))
        {
            var step = pacer.Next(wall, cpu, cap);
            if (step.IsSleep)
            {
                wall += step.Sleep + oversleep;
            }
            else
            {
                wall += step.Run + overrun;
                cpu += busy ? step.Run + overrun : TimeSpan.Zero;
            }
        }

        return (cpu - startCpu) / (wall - start);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(100)]
    public void UncappedRunsOnePeriodAtATimeAndNeverSleeps(int? cap)
    {
        var pacer = new CpuPacer();
        for (int i = 0; i < 100; i++)
        {
            var step = pacer.Next(Ms(20 * i), Ms(20 * i), cap);
            Assert.False(step.IsSleep);
            Assert.Equal(CpuPacer.DefaultPeriod, step.Run);
        }
    }

    [Fact]
    public void TheFirstSliceSpendsOnePeriodsShareAtFullSpeed()
    {
        // 25% of 20 ms is 5 ms of CPU; running flat out the credit falls at 75% of wall time: 6.67 ms.
        var step = new CpuPacer().Next(Ms(1000), Ms(300), 25);
        Assert.False(step.IsSleep);
        Assert.InRange(step.Run.TotalMilliseconds, 6.666, 6.667);
    }

    [Fact]
    public void AnOverdrawnHartSleepsUntilOnePeriodsShareIsBack()
    {
        var pacer = new CpuPacer();
        pacer.Next(Ms(0), Ms(0), 25);
        // 10 ms flat out: earned 2.5 ms, spent 10 ms; credit 5 + 2.5 - 10 = -2.5 ms.
        var step = pacer.Next(Ms(10), Ms(10), 25);
        Assert.Equal(Ms(-2.5), pacer.Credit);
        Assert.True(step.IsSleep);
        Assert.Equal(Ms(30), step.Sleep); // (5 + 2.5) ms of credit at 25% of wall time
        step = pacer.Next(Ms(40), Ms(10), 25);
        Assert.Equal(Ms(5), pacer.Credit);
        Assert.False(step.IsSleep);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(25)]
    [InlineData(50)]
    [InlineData(75)]
    [InlineData(99)]
    public void ABusyHartUsesItsCapOverTime(int cap)
    {
        double used = Simulate(new CpuPacer(), cap, seconds: 20);
        Assert.InRange(used, (cap / 100.0) - 0.005, (cap / 100.0) + 0.005);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(25)]
    [InlineData(50)]
    public void LateSliceEndsAndLateWakeUpsAreMadeUp(int cap)
    {
        // A slice ends only at a block boundary and a sleep wakes when the host scheduler gets to it.
        double used = Simulate(new CpuPacer(), cap, seconds: 20, overrun: Ms(0.3), oversleep: Ms(1));
        Assert.InRange(used, (cap / 100.0) - 0.005, (cap / 100.0) + 0.005);
    }

    [Fact]
    public void AnIdleHartIsNeverThrottled()
    {
        var pacer = new CpuPacer();
        TimeSpan wall = TimeSpan.Zero, cpu = TimeSpan.Zero;
        for (int i = 0; i < 1000; i++)
        {
            var step = pacer.Next(wall, cpu, 10);
            Assert.False(step.IsSleep);
            wall += step.Run + Ms(4); // asleep in WFI until the next tick
            cpu += Ms(0.05); // the tick's interrupt handler
        }
    }

    [Fact]
    public void AnIdleHartSavesAtMostTwoPeriodsShare()
    {
        var pacer = new CpuPacer();
        pacer.Next(Ms(0), Ms(0), 25);
        pacer.Next(Ms(10_000), Ms(1), 25); // ten seconds idle
        Assert.Equal(Ms(10), pacer.Credit); // 2 × 25% of 20 ms, not 2.5 s
    }

    [Fact]
    public void ATinyCreditRunsTheShortestSlice()
    {
        var pacer = new CpuPacer();
        pacer.Next(Ms(0), Ms(0), 50);
        var step = pacer.Next(Ms(10), Ms(14.99), 50); // credit 10 + 5 - 14.99 = 0.01 ms
        Assert.False(step.IsSleep);
        Assert.Equal(CpuPacer.MinimumRun, step.Run);
    }

    [Fact]
    public void ANewCapTakesEffectAtTheNextStep()
    {
        var pacer = new CpuPacer();
        double first = Simulate(pacer, 25, seconds: 5);
        double second = Simulate(pacer, 50, seconds: 5, start: TimeSpan.FromSeconds(5.1), startCpu: TimeSpan.FromSeconds(1.3));
        Assert.InRange(first, 0.245, 0.255);
        Assert.InRange(second, 0.49, 0.51);
    }

    [Fact]
    public void LiftingTheCapForgetsTheDebt()
    {
        var pacer = new CpuPacer();
        pacer.Next(Ms(0), Ms(0), 10);
        Assert.True(pacer.Next(Ms(50), Ms(50), 10).IsSleep); // deep in debt
        Assert.False(pacer.Next(Ms(51), Ms(50), null).IsSleep);
        Assert.Equal(TimeSpan.Zero, pacer.Credit);
        var step = pacer.Next(Ms(52), Ms(51), 10); // capped again: starts with one period's share
        Assert.False(step.IsSleep);
        Assert.Equal(Ms(2), pacer.Credit);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void ACapBelowOnePercentIsRefused(int cap) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new CpuPacer().Next(Ms(0), Ms(0), cap));

    [Fact]
    public void TheValidCapsAreOneToOneHundredOrNone()
    {
        Assert.True(MachineConfiguration.IsValidCpuCap(null));
        Assert.True(MachineConfiguration.IsValidCpuCap(1));
        Assert.True(MachineConfiguration.IsValidCpuCap(100));
        Assert.False(MachineConfiguration.IsValidCpuCap(0));
        Assert.False(MachineConfiguration.IsValidCpuCap(101));
    }
}
