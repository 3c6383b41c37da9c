using System.Globalization;
using HostVM.Cli.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>How the daemon commands show things to people: states in colour, sizes and times made short.</summary>
public static class HumanOutput
{
    /// <summary>A Spectre console on <paramref name="writer"/>: ANSI and colour only on a terminal (and not with NO_COLOR).</summary>
    public static IAnsiConsole CreateConsole(TextWriter writer, bool isTerminal)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = isTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = isTerminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = isTerminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!isTerminal)
        {
            console.Profile.Width = 240; // a pipe has no width: do not wrap tables at 80 columns
        }

        return console;
    }

    /// <summary>running green, paused yellow, stopped grey, failed red; the passing states blue.</summary>
    public static string State(string state) => state switch
    {
        "running" => "[green]running[/]",
        "paused" => "[yellow]paused[/]",
        "stopped" => "[grey]stopped[/]",
        "failed" => "[red]failed[/]",
        _ => $"[blue]{Markup.Escape(state)}[/]",
    };

    public static string Mib(long mib) => mib switch
    {
        >= 1024 when mib % 1024 == 0 => $"{mib / 1024} GiB",
        >= 1024 => $"{mib / 1024.0:0.#} GiB",
        _ => $"{mib} MiB",
    };

    public static string Bytes(long? bytes) => bytes switch
    {
        null => "-",
        < 1024 => $"{bytes} B",
        < 1 << 20 => $"{bytes / 1024.0:0.#} KiB",
        < 1 << 30 => $"{bytes / (double)(1 << 20):0.#} MiB",
        _ => $"{bytes / (double)(1 << 30):0.##} GiB",
    };

    public static string Time(DateTimeOffset? at) =>
        at is { } t ? t.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "-";

    /// <summary>How long ago, shortly: 42s, 5m, 3h, 2d.</summary>
    public static string Since(DateTimeOffset? at, DateTimeOffset now)
    {
        if (at is not { } t)
        {
            return "-";
        }

        var span = now - t;
        return span.TotalSeconds switch
        {
            < 0 => "0s",
            < 60 => $"{(int)span.TotalSeconds}s",
            < 3600 => $"{(int)span.TotalMinutes}m",
            < 86400 => $"{(int)span.TotalHours}h",
            _ => $"{(int)span.TotalDays}d",
        };
    }

    public static string Limits(RateLimits? limits)
    {
        var parts = new List<string>();
        if (limits?.BandwidthBytesPerS is { } bw)
        {
            parts.Add($"{Bytes(bw)}/s");
        }

        if (limits?.OpsPerS is { } ops)
        {
            parts.Add($"{ops} ops/s");
        }

        return parts.Count == 0 ? "unlimited" : string.Join(", ", parts);
    }

    /// <summary>A two-column grid of names and (markup) values, as `vm show` and `host info` print.</summary>
    public static Grid Fields(IEnumerable<(string Name, string Markup)> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadRight(2)).AddColumn();
        foreach (var (name, markup) in fields)
        {
            grid.AddRow(new Markup($"[bold]{Markup.Escape(name)}[/]"), new Markup(markup));
        }

        return grid;
    }

    /// <summary>A table with these column headers and no borders inside, like `docker ps` but boxed lightly.</summary>
    public static Table Table(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (string column in columns)
        {
            table.AddColumn(new TableColumn($"[bold]{Markup.Escape(column)}[/]"));
        }

        return table;
    }

    public static string Escape(string? text) => string.IsNullOrEmpty(text) ? "-" : Markup.Escape(text);
}
