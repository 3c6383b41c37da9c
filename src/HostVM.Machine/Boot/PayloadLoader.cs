namespace HostVM.Machine.Boot;

/// <summary>
/// Turns a boot file into a <see cref="BootPayload"/>, recognising what it is: an ELF executable goes where
/// its program headers say; a RISC-V Linux Image goes at RAM base + its text_offset (2 MiB aligned);
/// anything else is raw bytes (firmware .bin, initrd) at the address given (RAM base by default).
/// </summary>
public static class PayloadLoader
{
    public static PayloadKind Detect(ReadOnlySpan<byte> data)
    {
        if (data.Length >= 4 && data[..4].SequenceEqual("\u007fELF"u8))
        {
            return PayloadKind.Elf;
        }

        return LinuxImage.HasMagic(data) ? PayloadKind.LinuxImage : PayloadKind.Raw;
    }

    /// <param name="name">What messages call the payload ("kernel", "firmware", "initrd", a file name).</param>
    /// <param name="data">The file's bytes.</param>
    /// <param name="ramBase">Guest physical address of RAM.</param>
    /// <param name="address">Load address for an Image or raw file; null chooses (Image: its own, raw: RAM base). ELF files ignore it.</param>
    public static BootPayload Load(string name, ReadOnlyMemory<byte> data, ulong ramBase, ulong? address = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        switch (Detect(data.Span))
        {
            case PayloadKind.Elf:
                return ElfImage.Parse(data, name).ToPayload();
            case PayloadKind.LinuxImage:
                var image = LinuxImage.Parse(data, name);
                return image.ToPayload(address ?? image.LoadAddress(ramBase));
            default:
                return BootPayload.Raw(name, data, address ?? ramBase);
        }
    }
}
