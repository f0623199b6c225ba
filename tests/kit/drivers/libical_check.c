/*
 * libical_check FILE.ics: read one calendar with libical (the C library of Evolution) and print
 * a JSON report {"version", "errors", "warnings", "counts"} on stdout.
 *
 * libical reports what it cannot parse as X-LIC-ERROR properties inside the components, and
 * icalrestriction_check() adds more for RFC 5545 cardinality rules.  It keeps impossible dates
 * (February 30) as they are, so every DATE and DATE-TIME it decoded is checked as well.
 *
 * tests/setup.sh builds it:
 *   cc -o build/libical-check libical_check.c $(pkg-config --cflags --libs libical)
 */
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef LIBICAL_FULL_VERSION /* setup.sh passes pkg-config's, e.g. 3.0.16 */
#define LIBICAL_FULL_VERSION ICAL_VERSION
#endif

static int n_errors, n_vevent, n_vtodo, n_valarm;

static void json_string(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void error(const char *component, const char *label, const char *message)
{
    char text[2048];
    snprintf(text, sizeof text, "%s[%s] %s", component, label ? label : "?", message);
    printf(n_errors++ ? ", " : "");
    json_string(text);
}

static int impossible(struct icaltimetype t)
{
    if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > icaltime_days_in_month(t.month, t.year))
        return 1;
    return !t.is_date && (t.hour > 23 || t.minute > 59 || t.second > 60);
}

static void walk(icalcomponent *comp)
{
    const char *name = icalcomponent_kind_to_string(icalcomponent_isa(comp));
    const char *label = icalcomponent_get_uid(comp);
    char message[1024];

    switch (icalcomponent_isa(comp)) {
    case ICAL_VEVENT_COMPONENT: n_vevent++; break;
    case ICAL_VTODO_COMPONENT: n_vtodo++; break;
    case ICAL_VALARM_COMPONENT: n_valarm++; break;
    case ICAL_XLICINVALID_COMPONENT: error(name, label, "libical could not parse it"); break;
    default: break;
    }
    for (icalproperty *p = icalcomponent_get_first_property(comp, ICAL_ANY_PROPERTY); p;
         p = icalcomponent_get_next_property(comp, ICAL_ANY_PROPERTY)) {
        icalvalue *value = icalproperty_get_value(p);
        icalvalue_kind kind = value ? icalvalue_isa(value) : ICAL_NO_VALUE;
        if (icalproperty_isa(p) == ICAL_XLICERROR_PROPERTY) {
            snprintf(message, sizeof message, "X-LIC-ERROR: %s", icalproperty_get_xlicerror(p));
            error(name, label, message);
        } else if (kind == ICAL_DATE_VALUE || kind == ICAL_DATETIME_VALUE) {
            struct icaltimetype t = kind == ICAL_DATE_VALUE ? icalvalue_get_date(value)
                                                            : icalvalue_get_datetime(value);
            if (impossible(t)) {
                snprintf(message, sizeof message, "%s: impossible date %04d-%02d-%02d",
                         icalproperty_get_property_name(p), t.year, t.month, t.day);
                error(name, label, message);
            }
        }
    }
    for (icalcomponent *c = icalcomponent_get_first_component(comp, ICAL_ANY_COMPONENT); c;
         c = icalcomponent_get_next_component(comp, ICAL_ANY_COMPONENT))
        walk(c);
}

static char *read_line(char *buffer, size_t size, void *file)
{
    return fgets(buffer, (int)size, (FILE *)file);
}

int main(int argc, char **argv)
{
    FILE *file = argc == 2 ? fopen(argv[1], "rb") : NULL;
    if (!file) {
        fprintf(stderr, "usage: libical-check FILE.ics\n");
        return 2;
    }
    icalerror_set_errors_are_fatal(0);
    icalparser *parser = icalparser_new();
    icalparser_set_gen_data(parser, file);
    icalcomponent *root = icalparser_parse(parser, read_line);
    printf("{\"version\": ");
    json_string(LIBICAL_FULL_VERSION);
    printf(", \"errors\": [");
    int calendars = 0;
    if (root && icalcomponent_isa(root) == ICAL_VCALENDAR_COMPONENT) {
        calendars = 1;
        icalrestriction_check(root);
    } else if (root) {  /* several VCALENDARs come back inside an XROOT */
        for (icalcomponent *c = icalcomponent_get_first_component(root, ICAL_VCALENDAR_COMPONENT);
             c; c = icalcomponent_get_next_component(root, ICAL_VCALENDAR_COMPONENT), calendars++)
            icalrestriction_check(c);
    }
    if (root)
        walk(root);
    if (!calendars)
        error("file", "", "no VCALENDAR");
    printf("], \"warnings\": [], \"counts\": ");
    if (calendars)
        printf("{\"VEVENT\": %d, \"VTODO\": %d, \"VALARM\": %d}", n_vevent, n_vtodo, n_valarm);
    else
        printf("{}");
    printf("}\n");
    if (root)
        icalcomponent_free(root);
    icalparser_free(parser);
    fclose(file);
    return n_errors ? 1 : 0;
}
