using System.Diagnostics;
using HostVM.Machine.Cpu;
using HostVM.Machine.Memory;
using HostVM.Machine.Tests.Cpu;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests;

/// <summary>
/// The dirty-page log's reason to exist, live migration's pre-copy: while harts (on their own threads)
/// and a device keep writing, passes copy the pages they return into a shadow of RAM; after a pause,
/// one last pass; the shadow must then equal RAM byte for byte. It fails if any store or DMA write
/// escapes the log: a write-TLB entry a pass did not drop, a mark made before a device's bytes landed, a
/// hart the pass did not wait for.
/// </summary>
public sealed class DirtyPageTrackerTests
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong Page = GuestRam.PageSize;
    private const ulong RegionPages = 32;
    private const int Passes = 150;

    /// <summary>
    /// Forever: for each page of the region at x10 (x11 pages), sd the counter x12 at an offset that moves
    /// with it and amoadd it at +2040; then counter++. x15 = 4096. (No store crosses a page: those always
    /// take the slow path, which marks, and would hide a write-TLB entry that a pass failed to drop.)
    /// </summary>
    private static readonly uint[] StoreLoop =
    [
        Asm.Addi(13, 10, 0),       //  0: p = region
        Asm.Addi(14, 11, 0),       //  4: n = pages
        Asm.Slli(16, 12, 3),       //  8: page loop: offset = (counter * 8) & 0x7f8
        Asm.Andi(16, 16, 0x7f8),   // 12
        Asm.Add(17, 13, 16),       // 16
        Asm.Sd(12, 17, 0),         // 20
        Asm.Addi(18, 13, 2040),    // 24
        Asm.AmoaddD(0, 18, 12),    // 28
        Asm.Add(13, 13, 15),       // 32: p += 4096
        Asm.Addi(14, 14, -1),      // 36
        Asm.Bne(14, 0, -32),       // 40: to the page loop
        Asm.Addi(12, 12, 1),       // 44
        Asm.Jal(0, -48),           // 48: to the top
    ];

    private const ulong IdleLoop = Base + 0x100; // wfi; j wfi: a hart asleep that each pass must not wait out

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_pre_copy_of_passes_then_a_last_pass_after_a_pause_equals_RAM(int storingHarts)
    {
        using var h = new TestHart();
        h.Write(Base, StoreLoop);
        h.Write(IdleLoop, Asm.Wfi(), Asm.Jal(0, -4));
        var harts = new List<Hart> { h.Hart };
        for (int i = 1; i <= storingHarts; i++)
        {
            harts.Add(new Hart(i, h.Bus, h.Code, h.Clock));
        }

        try
        {
            for (int i = 0; i < harts.Count; i++)
            {
                // Hart 0 idles in WFI; the others store, each to its own region.
                var hart = harts[i];
                hart.Pc = i == 0 ? IdleLoop : Base;
                hart.SetX(10, Base + ((ulong)(16 + ((i - 1) * (int)RegionPages)) * Page));
                hart.SetX(11, RegionPages);
                hart.SetX(12, (ulong)i << 48);
                hart.SetX(15, Page);
            }

            var tracker = new DirtyPageTracker(h.Ram, harts);
            var memory = new GuestMemory(h.Ram, h.Code);
            MigrateWhileRunning(h.Ram, tracker, harts, memory);
            Assert.All(harts.Skip(1), hart => Assert.True(hart.InstructionsRetired > 0, "a storing hart never ran"));
        }
        finally
        {
            foreach (var hart in harts.Skip(1))
            {
                hart.Dispose();
            }
        }
    }

    [Fact]
    public void A_pass_does_not_wait_for_a_hart_that_is_stopped_and_wakes_one_asleep_in_WFI()
    {
        using var h = new TestHart();
        using var stopped = new Hart(1, h.Bus, h.Code, h.Clock);
        stopped.MarkStopped(); // HSM stopped: it waits inside Run for a start that never comes
        h.Write(IdleLoop, Asm.Wfi(), Asm.Jal(0, -4));
        h.Hart.Pc = IdleLoop; // no interrupt enabled: only a stop (or a pass) wakes it
        var tracker = new DirtyPageTracker(h.Ram, [h.Hart, stopped]);
        var threads = new[] { h.Hart, stopped }.Select(hart => new Thread(() => hart.Run()) { IsBackground = true }).ToList();
        foreach (var t in threads)
        {
            t.Start();
        }

        try
        {
            var passes = new Thread(() =>
            {
                tracker.Enable();
                var set = tracker.NewSet();
                for (int i = 0; i < 20; i++)
                {
                    tracker.CollectPass(set);
                }
            }) { IsBackground = true };
            passes.Start();
            // A generous bound against a hang, not a timing check: 20 passes take milliseconds.
            Assert.True(passes.Join(TimeSpan.FromSeconds(60)), "a pass waited for a stopped or sleeping hart");
        }
        finally
        {
            h.Hart.RequestStop();
            stopped.RequestStop();
            foreach (var t in threads)
            {
                t.Join();
            }
        }
    }

    private static unsafe void MigrateWhileRunning(GuestRam ram, DirtyPageTracker tracker, List<Hart> harts, GuestMemory memory)
    {
        var ramBytes = new Span<byte>(ram.Pointer, (int)ram.Size);
        var shadow = new byte[ram.Size];
        bool stop = false, dmaRefused = false;
        var threads = harts.Select((hart, i) => new Thread(() =>
        {
            var random = new Random(i);
            while (!Volatile.Read(ref stop))
            {
                // Slices of varied length: between them the hart is outside Run, as between a VM's slices.
                hart.Run((ulong)random.Next(1_000, 50_000));
            }
        }) { IsBackground = true, Name = $"hart{i}" }).ToList();

        // A device writing guest RAM meanwhile (DMA), into pages of its own past the harts' regions.
        threads.Add(new Thread(() =>
        {
            var random = new Random(99);
            var bytes = new byte[300];
            for (ulong n = 0; !Volatile.Read(ref stop); n++)
            {
                random.NextBytes(bytes);
                ulong address = Base + (112 * Page) + (ulong)random.Next(0, (int)(16 * Page) - bytes.Length);
                if (!memory.TryWrite(address, bytes))
                {
                    Volatile.Write(ref dmaRefused, true); // asserted on the test's thread: a throw here would end the process
                }

                if (n % 64 == 63)
                {
                    Thread.Sleep(1); // in bursts, as a device works: the harts need the host's cores too
                }
            }
        }) { IsBackground = true, Name = "dma" });

        foreach (var t in threads)
        {
            t.Start();
        }

        // Enabled while everything runs: entries the harts filled before must not survive it.
        tracker.Enable();
        ramBytes.CopyTo(shadow);
        var set = tracker.NewSet();
        long pagesCopied = 0;
        for (int pass = 0; pass < Passes; pass++)
        {
            tracker.CollectPass(set);
            pagesCopied += CopyPages(set, ramBytes, shadow);
            Thread.Sleep(pass % 3); // sometimes right away, sometimes after the harts dirtied more
        }

        // The pause: every thread out of guest code, then the last pass.
        Volatile.Write(ref stop, true);
        foreach (var hart in harts)
        {
            hart.RequestStop();
        }

        foreach (var t in threads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(30)), $"{t.Name} did not stop");
        }

        tracker.CollectPass(set);
        CopyPages(set, ramBytes, shadow);

        Assert.False(dmaRefused, "the device's writes were refused");
        Assert.True(pagesCopied > 0, "no pass found a dirty page: the test tested nothing");
        int firstDifference = ramBytes.CommonPrefixLength(shadow);
        Assert.True(firstDifference == shadow.Length,
            $"the copy differs from RAM at page {firstDifference / (int)Page} (offset 0x{firstDifference:x}): a write escaped the log");
    }

    private static int CopyPages(DirtyPageSet set, Span<byte> ram, byte[] shadow)
    {
        int count = 0;
        foreach (int page in set)
        {
            int at = page * (int)Page;
            ram.Slice(at, (int)Page).CopyTo(shadow.AsSpan(at));
            count++;
        }

        return count;
    }
}
