using System.Buffers.Binary;

namespace HostVM.Machine.Boot;

/// <summary>
/// A RISC-V Linux kernel Image (arch/riscv/boot/Image). Its 64-byte header (Documentation/arch/riscv/
/// boot-image-header.rst) is: code0 (u32), code1 (u32), text_offset (u64), image_size (u64), flags (u64),
/// version (u32), res1 (u32), res2 (u64), magic "RISCV\0\0\0" (u64, deprecated), magic2 "RSC\x05" (u32)
/// and res3 (u32, PE/COFF offset), all little-endian. The kernel runs from its first byte, which must sit
/// at a 2 MiB-aligned address; it uses image_size bytes from there (its file plus .bss and early data).
/// </summary>
public sealed class LinuxImage
{
    public const int HeaderSize = 64;
    public const int MagicOffset = 48;
    public const int Magic2Offset = 56;

    /// <summary>Where RV64 kernels go in RAM when the header gives no text_offset (pre-0.2 images).</summary>
    public const ulong DefaultTextOffset = 0x20_0000;

    /// <summary>An RV64 kernel's load address must be 2 MiB aligned.</summary>
    public const ulong Alignment = 0x20_0000;

    private const ulong FlagBigEndian = 0x1;

    private LinuxImage(string name, ReadOnlyMemory<byte> data, ulong textOffset, ulong imageSize, ulong flags, uint version)
    {
        Name = name;
        Data = data;
        TextOffset = textOffset;
        ImageSize = imageSize;
        Flags = flags;
        Version = version;
    }

    public string Name { get; }

    /// <summary>The whole file.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>Offset from the start of RAM at which the kernel expects to be loaded.</summary>
    public ulong TextOffset { get; }

    /// <summary>
    /// Bytes of memory the kernel occupies from its load address: the header's image_size, or the file's
    /// length if that is larger (or the header leaves it 0).
    /// </summary>
    public ulong ImageSize { get; }

    public ulong Flags { get; }

    /// <summary>Header version: major in bits 31:16, minor in 15:0 (0.2 today).</summary>
    public uint Version { get; }

    /// <summary>True when the bytes carry either Image magic number.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> data) =>
        (data.Length >= Magic2Offset + 4 && data.Slice(Magic2Offset, 4).SequenceEqual("RSC\x05"u8)) ||
        (data.Length >= MagicOffset + 8 && data.Slice(MagicOffset, 8).SequenceEqual("RISCV\0\0\0"u8));

    public static LinuxImage Parse(ReadOnlyMemory<byte> file, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var data = file.Span;
        if (data.Length >= 2 && data[0] == 0x1F && data[1] == 0x8B)
        {
            throw new BootImageException($"{name}: is gzip-compressed (Image.gz): decompress it with gunzip first");
        }

        if (data.Length >= 4 && data[..4].SequenceEqual("\u007fELF"u8))
        {
            throw new BootImageException($"{name}: is an ELF file (vmlinux?), not a raw Image: use arch/riscv/boot/Image");
        }

        if (data.Length < HeaderSize)
        {
            throw new BootImageException($"{name}: truncated Image header (file is {data.Length} bytes, the header alone is {HeaderSize})");
        }

        if (!HasMagic(data))
        {
            throw new BootImageException($"{name}: not a RISC-V Linux Image (bad magic at offset {Magic2Offset})");
        }

        ulong textOffset = BinaryPrimitives.ReadUInt64LittleEndian(data[8..]);
        ulong imageSize = BinaryPrimitives.ReadUInt64LittleEndian(data[16..]);
        ulong flags = BinaryPrimitives.ReadUInt64LittleEndian(data[24..]);
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data[32..]);

        if ((flags & FlagBigEndian) != 0)
        {
            throw new BootImageException($"{name}: is a big-endian kernel; HostVM runs little-endian RISC-V");
        }

        if (textOffset % 0x1000 != 0 || textOffset >= 1UL << 40)
        {
            throw new BootImageException($"{name}: corrupt Image header (text_offset 0x{textOffset:x} is not a sensible page-aligned offset)");
        }

        if (imageSize >= 1UL << 40)
        {
            throw new BootImageException($"{name}: corrupt Image header (image_size 0x{imageSize:x} is absurdly large)");
        }

        return new LinuxImage(name, file, textOffset == 0 ? DefaultTextOffset : textOffset, Math.Max(imageSize, (ulong)data.Length), flags, version);
    }

    /// <summary>Where the kernel goes in RAM starting at <paramref name="ramBase"/>: ramBase + text_offset, 2 MiB aligned.</summary>
    public ulong LoadAddress(ulong ramBase) => (ramBase + TextOffset + Alignment - 1) & ~(Alignment - 1);

    /// <summary>The kernel as a payload at <paramref name="loadAddress"/>, reserving <see cref="ImageSize"/> bytes.</summary>
    public BootPayload ToPayload(ulong loadAddress)
    {
        if (loadAddress % Alignment != 0)
        {
            throw new BootImageException($"{Name}: a RISC-V kernel must be loaded at a 2 MiB-aligned address, not 0x{loadAddress:x}");
        }

        if (loadAddress + ImageSize < loadAddress)
        {
            throw new BootImageException($"{Name}: 0x{ImageSize:x} bytes at 0x{loadAddress:x} run past the end of the address space");
        }

        return new BootPayload(Name, loadAddress, [new BootSegment(loadAddress, Data, ImageSize)]);
    }
}
