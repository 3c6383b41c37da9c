using System.Buffers.Binary;
using HostVM.Machine.Boot;
using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Boot;

public class ElfImageTests
{
    private const string Program = """
            .section .text.init, "ax"
            .globl _start
        _start:
            li a0, 1
            la t0, tohost
            sd a0, 0(t0)
        1:  j 1b
            .data
        buf: .dword 0x1122334455667788
            .bss
        zeros: .skip 4096
            .section .tohost, "aw", @progbits
            .align 6
            .globl tohost
        tohost: .dword 0
            .align 6
            .globl fromhost
        fromhost: .dword 0
        """;

    private const string LinkerScript = """
        OUTPUT_ARCH(riscv)
        ENTRY(_start)
        SECTIONS
        {
          . = 0x80000000;
          .text.init : { *(.text.init) }
          . = ALIGN(0x1000);
          .tohost : { *(.tohost) }
          . = ALIGN(0x1000);
          .text : { *(.text) }
          . = ALIGN(0x1000);
          .data : { *(.data) }
          .bss : { *(.bss) }
        }
        """;

    private static readonly Lazy<(byte[] Elf, string Nm)> Compiled = new(Compile);

    /// <summary>Builds the riscv-tests style program above with the installed cross compiler; returns it and nm's listing.</summary>
    private static (byte[] Elf, string Nm) Compile()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"hostvm-elf-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "t.S"), Program);
            File.WriteAllText(Path.Combine(dir, "link.ld"), LinkerScript);
            string output = Path.Combine(dir, "t.elf");
            const string hint = "install the RISC-V cross compiler with `apt-get install gcc-riscv64-unknown-elf`";
            var gcc = ExternalTool.Run("riscv64-unknown-elf-gcc", hint,
                "-march=rv64gc", "-mabi=lp64d", "-nostdlib", "-nostartfiles", "-T", Path.Combine(dir, "link.ld"), Path.Combine(dir, "t.S"), "-o", output);
            Assert.True(gcc.ExitCode == 0, gcc.Stderr);
            var nm = ExternalTool.Run("riscv64-unknown-elf-nm", hint, output);
            Assert.True(nm.ExitCode == 0, nm.Stderr);
            return (File.ReadAllBytes(output), nm.Stdout);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Compiled_program_segments_entry_and_symbols()
    {
        var elf = ElfImage.Parse(Compiled.Value.Elf, "t.elf");

        Assert.Equal(0x8000_0000UL, elf.Entry);
        Assert.False(elf.IsPositionIndependent);
        Assert.Equal(2, elf.Segments.Count);
        Assert.Equal(0x8000_0000UL, elf.Segments[0].PhysicalAddress);
        Assert.Equal(ElfSegment.Read | ElfSegment.Execute, elf.Segments[0].Flags);
        Assert.Equal((ulong)elf.Segments[0].Data.Length, elf.Segments[0].MemorySize);

        var data = elf.Segments[1];
        Assert.Equal(0x8000_1000UL, data.PhysicalAddress);
        Assert.Equal(0x1008, data.Data.Length); // .tohost and .data
        Assert.Equal(0x2008UL, data.MemorySize); // plus .bss
        Assert.Equal(0x1122_3344_5566_7788UL, BinaryPrimitives.ReadUInt64LittleEndian(data.Data.Span[0x1000..]));

        // Every symbol nm lists, at the address nm gives.
        foreach (string line in Compiled.Value.Nm.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] parts = line.Split(' ');
            Assert.True(elf.TryGetSymbol(parts[2], out ulong address), $"missing symbol {parts[2]}");
            Assert.Equal(Convert.ToUInt64(parts[0], 16), address);
        }

        Assert.False(elf.TryGetSymbol("no_such_symbol", out _));
    }

    [Fact]
    public void Compiled_program_gives_htif_its_window()
    {
        var elf = ElfImage.Parse(Compiled.Value.Elf, "t.elf");
        Assert.True(elf.TryGetSymbol("tohost", out ulong tohost));
        Assert.True(elf.TryGetSymbol("fromhost", out ulong fromhost));

        var htif = new HtifDevice(tohost, fromhost, _ => { }, _ => { });
        Assert.Equal(0x8000_1000UL, htif.WindowBase);
        Assert.Equal(0x48UL, htif.WindowSize);
    }

    [Fact]
    public void Every_truncation_of_a_compiled_program_is_reported_as_such()
    {
        byte[] file = Compiled.Value.Elf;
        for (int length = 0; length < file.Length; length++)
        {
            var e = Assert.Throws<BootImageException>(() => ElfImage.Parse(file.AsMemory(0, length), "t.elf"));
            Assert.StartsWith("t.elf: ", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    [Fact]
    public void Hand_built_file_round_trips()
    {
        var elf = ElfImage.Parse(TestElfBuilder.Sample().Build(), "sample.elf");

        Assert.Equal(0x8000_0004UL, elf.Entry);
        Assert.Equal([0x8000_0000UL, 0x8000_1000UL], elf.Segments.Select(s => s.PhysicalAddress));
        Assert.Equal("code....data"u8.ToArray(), elf.Segments[0].Data.ToArray());
        Assert.Equal(0x20UL, elf.Segments[0].MemorySize);
        Assert.True(elf.TryGetSymbol("tohost", out ulong tohost));
        Assert.Equal(0x8000_1000UL, tohost);
        Assert.True(elf.TryGetSymbol("helper", out ulong helper));
        Assert.Equal(0x8000_0008UL, helper); // the global definition wins over the local one

        var payload = elf.ToPayload();
        Assert.Equal("sample.elf", payload.Name);
        Assert.Equal(0x8000_0004UL, payload.Entry);
        Assert.Equal(0x8000_0000UL, payload.LoadAddress);
        Assert.Equal(0x8000_2000UL, payload.End);
    }

    [Theory]
    [InlineData(62, "sample.elf: is an ELF for x86-64, not RISC-V 64-bit")]
    [InlineData(183, "sample.elf: is an ELF for AArch64, not RISC-V 64-bit")]
    [InlineData(9999, "sample.elf: is an ELF for machine 9999, not RISC-V 64-bit")]
    public void Wrong_machine_is_named(int machine, string message)
    {
        var elf = TestElfBuilder.Sample();
        elf.Machine = (ushort)machine;
        var e = Assert.Throws<BootImageException>(() => ElfImage.Parse(elf.Build(), "sample.elf"));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Other_wrong_kinds_are_explained()
    {
        Assert.Contains("32-bit RISC-V", Error(b => b.Class = 1), StringComparison.Ordinal);
        Assert.Contains("big-endian", Error(b => b.Encoding = 2), StringComparison.Ordinal);
        Assert.Contains("relocatable object (.o)", Error(b => b.Type = 1), StringComparison.Ordinal);
        Assert.Contains("core dump", Error(b => b.Type = 4), StringComparison.Ordinal);
        Assert.Contains("no loadable", Error(b =>
        {
            b.Segments.Clear();
            b.Segments.Add((0x8000_0000, [], 0));
        }), StringComparison.Ordinal);
        Assert.Equal("x: not an ELF file (it does not start with \\x7fELF)",
            Assert.Throws<BootImageException>(() => ElfImage.Parse("MZ\0\0"u8.ToArray(), "x")).Message);

        static string Error(Action<TestElfBuilder> change)
        {
            var builder = TestElfBuilder.Sample();
            change(builder);
            return Assert.Throws<BootImageException>(() => ElfImage.Parse(builder.Build(), "sample.elf")).Message;
        }
    }

    [Fact]
    public void Segment_past_end_of_file_or_larger_on_disk_than_in_memory_is_corrupt()
    {
        byte[] file = TestElfBuilder.Sample().Build();
        byte[] badOffset = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(badOffset.AsSpan(64 + 8), ulong.MaxValue - 2);
        Assert.Contains("truncated segment 0", Assert.Throws<BootImageException>(() => ElfImage.Parse(badOffset, "s")).Message, StringComparison.Ordinal);

        byte[] badSize = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(badSize.AsSpan(64 + 40), 1);
        Assert.Contains("larger than its memory size", Assert.Throws<BootImageException>(() => ElfImage.Parse(badSize, "s")).Message, StringComparison.Ordinal);

        byte[] wraps = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(wraps.AsSpan(64 + 24), ulong.MaxValue - 4);
        Assert.Contains("address space", Assert.Throws<BootImageException>(() => ElfImage.Parse(wraps, "s")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fuzzed_files_fail_only_with_boot_image_exceptions()
    {
        var random = new Random(20250101);
        byte[][] seeds = [TestElfBuilder.Sample().Build(), Compiled.Value.Elf];
        int rejected = 0;
        for (int round = 0; round < 20_000; round++)
        {
            byte[] seed = seeds[round % seeds.Length];
            byte[] file = (byte[])seed.Clone();
            int mutations = 1 + random.Next(8);
            for (int m = 0; m < mutations; m++)
            {
                // Mostly hit the headers and tables, where offsets and sizes live.
                int region = random.Next(4);
                int at = region switch
                {
                    0 => random.Next(Math.Min(64, file.Length)),
                    1 => 64 + random.Next(Math.Min(56 * 3, file.Length - 64)),
                    2 => file.Length - 1 - random.Next(Math.Min(64 * 9, file.Length)),
                    _ => random.Next(file.Length),
                };
                file[at] = random.Next(3) switch
                {
                    0 => (byte)random.Next(256),
                    1 => 0xFF,
                    _ => 0,
                };
            }

            if (random.Next(10) == 0)
            {
                Array.Resize(ref file, random.Next(file.Length));
            }

            try
            {
                var elf = ElfImage.Parse(file, "fuzz.elf");
                _ = elf.ToPayload();
            }
            catch (BootImageException e)
            {
                Assert.StartsWith("fuzz.elf: ", e.Message, StringComparison.Ordinal);
                rejected++;
            }
        }

        Assert.InRange(rejected, 1000, 20_000);
    }
}
